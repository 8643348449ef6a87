import FFmpeg
import Foundation
import LectureModel

/// Feeds the lecture's sound to the speech recognizer: resampled to 16-kHz mono, written in pieces
/// of a quarter second.
final class SpeechBranch: Branch {
    let name = "speech"
    private let recognizer: any SpeechRecognizer
    private let resampler = Resampler(monoSigned16At: SpeechAudio.sampleRate)
    private(set) var samples = 0

    init(recognizer: any SpeechRecognizer) {
        self.recognizer = recognizer
    }

    func consume(_ frame: Frame) throws {
        guard let t = frame.time, t >= -1e-3 else { return }
        try resampler.push(frame)
        try send(all: false)
    }

    func finish() throws {
        try resampler.flush()
        try send(all: true)
    }

    private func send(all: Bool) throws {
        let piece = Int(SpeechAudio.sampleRate) / 4
        while all || resampler.buffered >= piece, let pcm = try resampler.pullSamples(max: piece) {
            samples += pcm.count / 2
            try recognizer.write(pcm)
        }
    }
}
