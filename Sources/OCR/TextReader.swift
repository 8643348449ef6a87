internal import CTesseract

/// A rectangle in picture pixels, top-left origin.
public struct TextBox: Sendable, Equatable {
    public var x: Int, y: Int, width: Int, height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
}

/// One word as Tesseract read it, with its confidence (0-100).
public struct TextWord: Sendable {
    public var text: String
    public var confidence: Double
    public var box: TextBox

    public init(text: String, confidence: Double, box: TextBox) {
        self.text = text; self.confidence = confidence; self.box = box
    }
}

/// One line of text: its words in reading order and the box around all of them.
public struct TextLine: Sendable {
    public var words: [TextWord]
    public var box: TextBox

    public init(words: [TextWord], box: TextBox) {
        self.words = words; self.box = box
    }
}

public struct TextReaderError: Error, CustomStringConvertible {
    public var description: String
}

/// Reads the text of grey pictures with Tesseract's LSTM engine. One reader belongs to one thread at a
/// time (Tesseract's handle is not thread-safe); make one per thread that reads.
public final class TextReader {
    private let handle: OpaquePointer
    public let languages: String

    /// `languages` is Tesseract's list (`eng`, `chi_sim+eng`); `dataPath` the tessdata folder, or nil
    /// for the library's default (or `TESSDATA_PREFIX`). Fails when a language's data is missing.
    public init(languages: String, dataPath: String? = nil) throws {
        guard let h = TessBaseAPICreate() else { throw TextReaderError(description: "cannot create a Tesseract reader") }
        // Tesseract's notes ("Detected 17 diacritics", the paths it tried for missing data) would go to
        // stderr; the error below says what is missing in one line.
        _ = TessBaseAPISetVariable(h, "debug_file", "/dev/null")
        let status = TessBaseAPIInit3(h, dataPath, languages)
        guard status == 0 else {
            TessBaseAPIDelete(h)
            throw TextReaderError(description: "Tesseract has no data for \"\(languages)\" (install tesseract-ocr-LANG, e.g. tesseract-ocr-chi-sim)")
        }
        TessBaseAPISetPageSegMode(h, PSM_AUTO)
        _ = TessBaseAPISetVariable(h, "debug_file", "/dev/null")
        handle = h
        self.languages = languages
    }

    deinit {
        TessBaseAPIEnd(handle)
        TessBaseAPIDelete(handle)
    }

    /// The lines of text in a grey picture (one byte a pixel, rows `stride` bytes apart), top to bottom
    /// in Tesseract's reading order. With `singleLine`, the picture is read as one line of text (a
    /// heading cut out of a slide) and the answer has at most one line.
    public func read(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, singleLine: Bool = false) throws -> [TextLine] {
        guard width > 0, height > 0, stride >= width, width <= 1 << 15, height <= 1 << 15 else {
            throw TextReaderError(description: "cannot read text of a \(width)x\(height) picture")
        }
        omp_set_max_active_levels(0)
        TessBaseAPISetPageSegMode(handle, singleLine ? PSM_SINGLE_LINE : PSM_AUTO)
        TessBaseAPISetImage(handle, pixels, Int32(width), Int32(height), 1, Int32(stride))
        // A picture carries no resolution: read it as a 13.33-inch-wide slide (the 16:9 size of
        // presentation programs), 96 dpi at 1280 pixels. At 150 dpi Tesseract missed Chinese headings
        // that it reads at 70-100 (BENCHMARKS.md, "Chapters").
        // A line cut out of a slide is read at 70 dpi, as Tesseract reads a picture that names none.
        TessBaseAPISetSourceResolution(handle, singleLine ? 70 : Int32(min(300, max(70, Double(width) / 13.33)).rounded()))
        guard TessBaseAPIRecognize(handle, nil) == 0 else { throw TextReaderError(description: "Tesseract could not read the picture") }
        guard let results = TessBaseAPIGetIterator(handle) else { return [] }
        defer { TessResultIteratorDelete(results) }
        let page = TessResultIteratorGetPageIterator(results)
        var lines: [TextLine] = []
        repeat {
            guard let cText = TessResultIteratorGetUTF8Text(results, RIL_WORD) else { continue }
            let text = String(cString: cText)
            TessDeleteText(cText)
            var l: Int32 = 0, t: Int32 = 0, r: Int32 = 0, b: Int32 = 0
            guard TessPageIteratorBoundingBox(page, RIL_WORD, &l, &t, &r, &b) != 0 else { continue }
            let word = TextWord(text: text, confidence: Double(TessResultIteratorConfidence(results, RIL_WORD)),
                                box: TextBox(x: Int(l), y: Int(t), width: Int(r - l), height: Int(b - t)))
            if lines.isEmpty || TessPageIteratorIsAtBeginningOf(page, RIL_TEXTLINE) != 0 {
                lines.append(TextLine(words: [word], box: word.box))
            } else {
                lines[lines.count - 1].words.append(word)
                lines[lines.count - 1].box = union(lines[lines.count - 1].box, word.box)
            }
        } while TessResultIteratorNext(results, RIL_WORD) != 0
        return lines
    }

    private func union(_ a: TextBox, _ b: TextBox) -> TextBox {
        let x0 = min(a.x, b.x), y0 = min(a.y, b.y)
        let x1 = max(a.x + a.width, b.x + b.width), y1 = max(a.y + a.height, b.y + b.height)
        return TextBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0)
    }
}
