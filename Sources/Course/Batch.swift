public import Foundation
public import LectureModel
import Synchronization

/// What a batch reports as it runs, in order, from several threads.
public enum BatchEvent: Sendable {
    case started(course: String, lectures: Int, toRun: Int, workers: Int)
    case skipped(id: String, title: String)
    case lectureStarted(id: String, title: String, worker: Int)
    case progress(id: String, worker: Int, percent: Double, eta: Double?)
    case finished(id: String, worker: Int, seconds: Double, duration: Double, bytes: Int)
    case failed(id: String, worker: Int?, category: FailureCategory, reason: String)
    /// Stopped because the batch was interrupted; pending again, the next run makes it.
    case stopped(id: String, worker: Int)
    case warning(String)
    case batchFinished(BatchSummary)
}

public struct BatchSummary: Sendable, Codable {
    public var lectures: Int
    public var ran: Int
    public var skipped: Int
    public var ready: Int
    public var failed: Int
    public var pending: Int
    public var seconds: Double
    public var manifest: String
    public var report: String
}

public struct BatchOptions: Sendable {
    /// Lectures encoded at once: one more than the cores. Each worker's encoder threads are planned
    /// for its share of the cores; the extra worker fills the single-threaded stretches (probing,
    /// finishing playlists and downloads, process start). On 2 cores, 3 workers ran a course 4%
    /// faster than 1 and 1% faster than 2 (BENCHMARKS.md, "batch throughput").
    public static var defaultWorkers: Int { ProcessInfo.processInfo.activeProcessorCount + 1 }

    public var workers = BatchOptions.defaultWorkers
    /// Preset name or file; overrides course.json's course-wide preset, not a lecture's own.
    public var preset: String?
    public var limits = WorkerLimits()
    public var renditionsOnly = false
    /// The coursepack executable that runs each lecture (`transcode` in worker mode).
    public var executable: String
    /// Turns a preset name or path into a preset file.
    public var locatePreset: @Sendable (String) throws -> URL
    /// Cores shared by the workers.
    public var cores = ProcessInfo.processInfo.activeProcessorCount
    /// Environment added to every worker's.
    public var workerEnvironment: [String: String] = [:]
    /// The speech stage for every lecture (`--asr-model`): its model, and the language for lectures
    /// whose course.json gives none; nil: none.
    public var speech: SpeechOptions?

    public init(executable: String, locatePreset: @escaping @Sendable (String) throws -> URL) {
        self.executable = executable
        self.locatePreset = locatePreset
    }
}

/// Turns a course folder into a course package: one child process per lecture, N at a time, the
/// manifest rewritten atomically after each lecture, unchanged lectures skipped.
/// Unchecked Sendable: `run` sets `spec`, `batchPreset`, `jobs` and `workers`, and the entries of the
/// lectures it skips, before it starts the worker threads, which only read the first four; from then
/// on `entries`, `bytes` and `next` are read and written with `lock` held only.
public final class Batch: @unchecked Sendable {
    /// Folder in OUTDIR for the batch's own files: the lock and the source hash cache.
    static let stateFolder = ".coursepack"

    private let courseDirectory: URL
    private let output: URL
    private let options: BatchOptions
    private let emit: @Sendable (BatchEvent) -> Void
    private let lock = NSLock()
    private var spec: CourseSpec!
    private var jobs: [Job] = []
    private var entries: [CourseManifest.Entry] = []
    private var bytes: [String: Int] = [:]
    private var next = 0
    /// Workers actually started (no more than there are lectures to make).
    private var workers = 1
    private var batchPreset: CourseManifest.PresetInfo!

    struct Job {
        var lecture: CourseLecture
        var presetFile: URL
        var key: String
    }

    public init(courseDirectory: String, output: String, options: BatchOptions, events: @escaping @Sendable (BatchEvent) -> Void) {
        self.courseDirectory = URL(fileURLWithPath: courseDirectory).standardizedFileURL
        self.output = URL(fileURLWithPath: output).standardizedFileURL
        self.options = options
        emit = events
    }

    public func run() throws -> BatchSummary {
        let started = Date()
        let spec = try CourseSpec.load(courseDirectory: courseDirectory.path, excluding: output.path)
        self.spec = spec
        for u in spec.unlisted { emit(.warning("\(u): not listed in \(CourseSpec.specFileName), not packaged")) }
        // Presets are checked before anything is written.
        let (batchURL, batchPreset) = try loadPreset(options.preset ?? spec.preset ?? "lecture")
        self.batchPreset = .init(name: batchPreset.name, sha256: batchPreset.fingerprint)
        let presets = try spec.lectures.map { try $0.preset.map(loadPreset) ?? (batchURL, batchPreset) }
        let lockFD = try prepareOutput()
        defer { close(lockFD) }
        removeLeftovers()

        // Plan: hash sources, skip what is already made the same way.
        let hashes = SourceHashCache(url: output.appendingPathComponent(Batch.stateFolder).appendingPathComponent("sources.json"))
        var toRun: [Job] = []
        var skipped: [CourseLecture] = []
        var failedEarly: [(CourseLecture, CoursePackError)] = []
        for (i, lecture) in spec.lectures.enumerated() {
            let (presetURL, preset) = presets[i]
            var entry = CourseManifest.Entry(id: lecture.id, title: lecture.title, source: lecture.relativeSource,
                                             status: .pending, path: nil, preset: preset.name, lecture: nil, error: nil)
            let key: String
            do {
                key = try BuildKey.make(source: lecture.source, captions: lecture.captions, preset: preset,
                                        extras: !options.renditionsOnly, speech: speech(for: lecture), hashes: hashes)
            } catch let e as CoursePackError {
                entry.status = .failed
                entry.error = .init(category: FailureCategory(e.category), reason: e.description)
                entries.append(entry)
                failedEarly.append((lecture, e))
                continue
            }
            let package = output.appendingPathComponent(lecture.id)
            if let made = try? LectureManifest.read(package: package), made.build?.key == key {
                entry.status = .ready
                entry.path = lecture.id + "/"
                entry.lecture = made.rebased(under: lecture.id + "/")
                bytes[lecture.id] = Batch.diskBytes(package)
                skipped.append(lecture)
            } else {
                toRun.append(Job(lecture: lecture, presetFile: presetURL, key: key))
            }
            entries.append(entry)
        }
        hashes.save()
        jobs = toRun
        workers = max(1, min(options.workers, toRun.count))
        emit(.started(course: spec.id, lectures: spec.lectures.count, toRun: toRun.count, workers: workers))
        for l in skipped { emit(.skipped(id: l.id, title: l.title)) }
        for (l, e) in failedEarly { emit(.failed(id: l.id, worker: nil, category: FailureCategory(e.category), reason: e.description)) }
        try lock.withLock { try writeManifest() }

        // Run: one thread per worker, each running one child process at a time.
        let done = DispatchGroup()
        for w in 0..<workers {
            done.enter()
            let thread = Thread { [self] in
                while let job = take() { runJob(job, worker: w + 1) }
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        done.wait()

        try lock.withLock { try writeManifest() }
        let ready = entries.filter { $0.status == .ready }.count
        let failed = entries.filter { $0.status == .failed }.count
        let summary = BatchSummary(lectures: entries.count, ran: toRun.count, skipped: skipped.count,
                                   ready: ready, failed: failed, pending: entries.count - ready - failed,
                                   seconds: Date().timeIntervalSince(started),
                                   manifest: output.appendingPathComponent("manifest.json").path,
                                   report: output.appendingPathComponent("index.html").path)
        emit(.batchFinished(summary))
        if let sig = Signals.received {
            throw CoursePackError(.interrupted, path: output.path, "batch interrupted by signal \(sig); run it again to finish")
        }
        return summary
    }

    private func take() -> Job? {
        lock.withLock {
            guard next < jobs.count, Signals.received == nil else { return nil }
            defer { next += 1 }
            return jobs[next]
        }
    }

    // MARK: one lecture

    private func runJob(_ job: Job, worker: Int) {
        let lecture = job.lecture
        emit(.lectureStarted(id: lecture.id, title: lecture.title, worker: worker))
        let started = Date()
        let destination = output.appendingPathComponent(lecture.id)
        var task = LectureWorker.Assignment(source: lecture.source, destination: destination, presetFile: job.presetFile, key: job.key,
                                      cores: max(1, Int((Double(options.cores) / Double(workers)).rounded(.up))),
                                      displayName: lecture.relativeSource)
        task.captions = lecture.captions
        task.renditionsOnly = options.renditionsOnly
        task.speech = speech(for: lecture)
        let outcome = LectureWorker(executable: options.executable, limits: options.limits, environment: options.workerEnvironment)
            .run(task, stop: { Signals.received != nil }) { [self] percent, eta in
                emit(.progress(id: lecture.id, worker: worker, percent: percent, eta: eta))
            }

        var interrupted = false
        lock.withLock {
            let i = entries.firstIndex { $0.id == lecture.id }!
            switch outcome {
            case let .failed(failure) where failure.category == .interrupted && Signals.received != nil:
                interrupted = true
                entries[i].status = .pending  // not the lecture's fault: the next run makes it
            case let .failed(failure):
                entries[i].status = .failed
                entries[i].error = failure
                entries[i].lecture = nil
                entries[i].path = nil
            case let .ready(made):
                entries[i].status = .ready
                entries[i].error = nil
                entries[i].path = lecture.id + "/"
                entries[i].lecture = made.rebased(under: lecture.id + "/")
                bytes[lecture.id] = Batch.diskBytes(destination)
            }
            do {
                try writeManifest()
            } catch {
                emit(.warning("\(error)"))
            }
        }
        if interrupted {
            emit(.stopped(id: lecture.id, worker: worker))
            return
        }
        switch outcome {
        case let .failed(failure):
            emit(.failed(id: lecture.id, worker: worker, category: failure.category, reason: failure.reason))
        case let .ready(made):
            emit(.finished(id: lecture.id, worker: worker, seconds: Date().timeIntervalSince(started), duration: made.duration,
                           bytes: lock.withLock { bytes[lecture.id] ?? 0 }))
        }
    }

    // MARK: output folder

    /// Creates OUTDIR and takes its lock, so two batches never write into one folder.
    private func prepareOutput() throws -> Int32 {
        let state = output.appendingPathComponent(Batch.stateFolder)
        try createFolder(state.path)
        let lockPath = state.appendingPathComponent("lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CoursePackError(.output, path: lockPath, "cannot open: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw CoursePackError(.output, path: output.path, "another coursepack batch is writing to this folder")
        }
        return fd
    }

    /// Temporary files of a batch that was killed (this batch holds the lock, so none is in use), and
    /// what its killed workers left beside their packages, by Publishing's rule.
    private func removeLeftovers() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: output.path)) ?? []
        for name in names where name.hasPrefix(".") && name != Batch.stateFolder && name.contains(".tmp-") {
            try? FileManager.default.removeItem(at: output.appendingPathComponent(name))
        }
        Publishing.removeLeftovers(in: output)
    }

    /// Called with `lock` held.
    private func writeManifest() throws {
        let manifest = CourseManifest(course: .init(id: spec.id, title: spec.title, description: spec.description),
                                      preset: batchPreset, lectures: entries,
                                      bytes: entries.filter { $0.status == .ready }.compactMap { bytes[$0.id] }.reduce(0, +))
        try AtomicFile.write(try manifest.encoded(), to: output.appendingPathComponent("manifest.json"))
        try AtomicFile.write(try CourseSearch.encoded(course: spec.id, lectures: searchIndex()), to: output.appendingPathComponent("search.json"))
        try AtomicFile.write(Data(Report.html(manifest).utf8), to: output.appendingPathComponent("index.html"))
    }

    /// Each ready lecture's search entries, read once per package made (by its build key).
    private var searchCache: [String: (key: String?, index: CourseSearch.LectureIndex)] = [:]

    /// Called with `lock` held.
    private func searchIndex() -> [CourseSearch.LectureIndex] {
        entries.filter { $0.status == .ready }.compactMap { e -> CourseSearch.LectureIndex? in
            guard let l = e.lecture else { return nil }
            if let cached = searchCache[e.id], cached.key == l.build?.key { return cached.index }
            let index = CourseSearch.index(id: e.id, title: e.title, package: output.appendingPathComponent(e.id), lecture: l)
            searchCache[e.id] = (l.build?.key, index)
            return index
        }
    }

    // MARK: helpers

    /// The speech stage for `lecture`: the batch's model, the lecture's language or else the batch's.
    private func speech(for lecture: CourseLecture) -> SpeechOptions? {
        options.speech.map { SpeechOptions(model: $0.model, language: lecture.language ?? $0.language) }
    }

    private func loadPreset(_ nameOrPath: String) throws -> (URL, Preset) {
        let url = try options.locatePreset(nameOrPath)
        return (url, try Preset.load(url))
    }

    static func diskBytes(_ dir: URL) -> Int {
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.fileSizeKey]) else { return 0 }
        var total = 0
        for case let url as URL in e { total += (try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0 }
        return total
    }
}

/// What makes a lecture's package what it is: the source's bytes, its caption files (named ones and
/// sidecars), the preset, the extras switch and the tool version. A package whose lecture.json
/// carries the same key need not be made again.
public enum BuildKey {
    public static func make(source: String, captions: [CaptionInput], preset: Preset, extras: Bool, speech: SpeechOptions? = nil,
                            hashes: SourceHashCache) throws -> String {
        let all = captions + CaptionInput.sidecars(of: source).filter { s in !captions.contains { $0.path == s.path } }
        var parts = ["coursepack \(Product.version)", "source \(try hashes.hash(source))", "preset \(preset.fingerprint)", "extras \(extras)"]
        // The speech stage by its model's weights (not its folder's name) and language.
        if let speech {
            parts.append("speech \(try hashes.hash((speech.model as NSString).appendingPathComponent("model.bin"))) \(speech.language ?? "detect")")
        }
        for c in all {
            parts.append("captions \(c.language ?? "-") \(URL(fileURLWithPath: c.path).lastPathComponent) \(try hashes.hash(c.path))")
        }
        return Hashing.sha256Hex(Data(parts.joined(separator: "\n").utf8))
    }
}

/// SHA-256 of source files, remembered by path, size, modification time and inode so an unchanged
/// rerun over hours of recordings does not read them all again.
public final class SourceHashCache: Sendable {
    struct Record: Codable {
        var size: Int
        var modified: Double
        var inode: UInt64
        var sha256: String
    }

    let url: URL
    private let records: Mutex<[String: Record]>

    public init(url: URL) {
        self.url = url
        records = Mutex((try? JSONDecoder().decode([String: Record].self, from: Data(contentsOf: url))) ?? [:])
    }

    public func hash(_ path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw CoursePackError(.badInput, path: path, "cannot read: \(String(cString: strerror(errno)))")
        }
        let modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        if let r = records.withLock({ $0[path] }), r.size == Int(st.st_size), r.modified == modified, r.inode == UInt64(st.st_ino) {
            return r.sha256
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CoursePackError(.badInput, path: path, "cannot read: \(String(cString: strerror(errno)))")
        }
        defer { try? handle.close() }
        var h = Hashing.SHA256Stream()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { h.update(chunk) }
        } catch {
            throw CoursePackError(.badInput, path: path, "cannot read: \(error.localizedDescription)")
        }
        let digest = h.finish()
        records.withLock { $0[path] = Record(size: Int(st.st_size), modified: modified, inode: UInt64(st.st_ino), sha256: digest) }
        return digest
    }

    public func save() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let data = records.withLock({ try? encoder.encode($0) }) { try? AtomicFile.write(data, to: url) }
    }
}
