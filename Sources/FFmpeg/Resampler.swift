internal import CFFmpeg
public import Foundation

/// Converts audio to an encoder's rate, layout and sample format with libswresample, and cuts it into
/// frames of the encoder's size through an AVAudioFifo. Timestamps count samples from the first
/// input frame's time, in 1/sampleRate.
/// Not Sendable: confined to one thread.
public final class Resampler {
    private var swr: OpaquePointer?
    private var fifo: OpaquePointer?
    private let outRate: Int32
    private let outChannels: Int32
    private let outFormat: AVSampleFormat
    private var inputSignature: (rate: Int32, format: Int32, channels: Int32, order: UInt32, mask: UInt64)?
    private var nextPTS: Int64?

    public var timeBase: Rational { Rational(1, outRate) }

    /// Output matching `encoder`'s sample rate, channel count and sample format.
    public init(for encoder: Encoder) throws {
        outRate = encoder.context!.pointee.sample_rate
        outChannels = encoder.context!.pointee.ch_layout.nb_channels
        outFormat = encoder.context!.pointee.sample_fmt
        fifo = av_audio_fifo_alloc(outFormat, outChannels, 4096)
        if fifo == nil { fatalError("av_audio_fifo_alloc: out of memory") }
    }

    /// Output as 16-bit mono at `sampleRate`, read as raw bytes with `pullSamples` (for the speech
    /// engine, which takes PCM on a pipe).
    public init(monoSigned16At sampleRate: Int32) {
        outRate = sampleRate
        outChannels = 1
        outFormat = AV_SAMPLE_FMT_S16
        fifo = av_audio_fifo_alloc(outFormat, outChannels, 4096)
        if fifo == nil { fatalError("av_audio_fifo_alloc: out of memory") }
    }

    /// Up to `max` queued samples as bytes (interleaved, in the output format); nil when none are queued.
    public func pullSamples(max: Int) throws -> Data? {
        let n = min(max, Int(av_audio_fifo_size(fifo)))
        guard n > 0 else { return nil }
        let bytesPerSample = Int(av_get_bytes_per_sample(outFormat) * outChannels)
        var data = Data(count: n * bytesPerSample)
        let read = data.withUnsafeMutableBytes { buffer -> Int32 in
            var plane: UnsafeMutableRawPointer? = buffer.baseAddress
            return av_audio_fifo_read(fifo, &plane, Int32(n))
        }
        try check(read, "reading queued samples")
        return data.prefix(Int(read) * bytesPerSample)
    }

    deinit {
        swr_free(&swr)
        av_audio_fifo_free(fifo)
    }

    /// Samples waiting to be pulled.
    public var buffered: Int { Int(av_audio_fifo_size(fifo)) }

    /// Converts a decoded frame and queues its samples. A change of input layout or rate mid-stream
    /// re-creates the converter.
    public func push(_ frame: Frame) throws {
        let f = frame.pointer.pointee
        let sig = (f.sample_rate, f.format, f.ch_layout.nb_channels, f.ch_layout.order.rawValue, f.ch_layout.u.mask)
        if inputSignature == nil || inputSignature! != sig {
            try configure(frame)
            inputSignature = sig
        }
        if nextPTS == nil {
            let start = frame.time ?? 0
            nextPTS = Rational(1, outRate).timestamp(start)
        }
        try convertAndQueue(UnsafeMutablePointer<UnsafePointer<UInt8>?>(OpaquePointer(f.extended_data)), count: f.nb_samples)
    }

    /// Drains the converter's delay at the end of the input.
    public func flush() throws {
        guard swr != nil else { return }
        try convertAndQueue(nil, count: 0)
    }

    /// Converts `count` input samples (nil input drains the converter) and appends them to the FIFO.
    private func convertAndQueue(_ input: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, count: Int32) throws {
        let maxOut = swr_get_out_samples(swr, count)
        guard maxOut > 0 else { return }
        var planes = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: Int(outChannels))
        var linesize: Int32 = 0
        try check(av_samples_alloc(&planes, &linesize, outChannels, maxOut, outFormat, 0), "allocating samples")
        defer { av_freep(&planes[0]) }
        let converted = planes.withUnsafeMutableBufferPointer { swr_convert(swr, $0.baseAddress, maxOut, input, count) }
        try check(converted, "resampling")
        try planes.withUnsafeMutableBufferPointer { buf in
            let raw = UnsafeMutableRawPointer(buf.baseAddress!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
            try check(av_audio_fifo_write(fifo, raw, converted), "queueing samples")
        }
    }

    /// The next frame of exactly `size` samples, or of what is left when `partial` is true; nil when
    /// not enough samples are queued.
    public func pull(size: Int, partial: Bool = false) throws -> Frame? {
        let available = Int(av_audio_fifo_size(fifo))
        let n = partial ? min(size, available) : size
        guard n > 0, available >= n else { return nil }
        let frame = Frame(timeBase: timeBase)
        frame.pointer.pointee.nb_samples = Int32(n)
        frame.pointer.pointee.format = outFormat.rawValue
        frame.pointer.pointee.sample_rate = outRate
        cp_layout_default(&frame.pointer.pointee.ch_layout, outChannels)
        try check(av_frame_get_buffer(frame.pointer, 0), "allocating audio frame")
        let read = frame.pointer.pointee.extended_data.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(outChannels)) {
            av_audio_fifo_read(fifo, $0, Int32(n))
        }
        try check(read, "reading queued samples")
        frame.pointer.pointee.pts = nextPTS ?? 0
        nextPTS = (nextPTS ?? 0) + Int64(n)
        return frame
    }

    private func configure(_ frame: Frame) throws {
        swr_free(&swr)
        var outLayout = AVChannelLayout()
        cp_layout_default(&outLayout, outChannels)
        defer { av_channel_layout_uninit(&outLayout) }
        var inLayout = frame.pointer.pointee.ch_layout
        var tmpLayout = AVChannelLayout()
        defer { av_channel_layout_uninit(&tmpLayout) }
        if inLayout.order == AV_CHANNEL_ORDER_UNSPEC {
            // Streams without a declared layout get the default layout for their channel count.
            cp_layout_default(&tmpLayout, inLayout.nb_channels)
            inLayout = tmpLayout
        }
        try check(swr_alloc_set_opts2(&swr, &outLayout, outFormat, outRate,
                                      &inLayout, AVSampleFormat(rawValue: frame.pointer.pointee.format),
                                      frame.pointer.pointee.sample_rate, 0, nil), "configuring resampler")
        try check(swr_init(swr), "configuring resampler")
    }
}
