#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes a file so that readers see either the old file or the complete new
/// one: bytes go to a temporary file in the same folder (same file system,
/// so `rename` is atomic), which replaces the target only after a full write
/// and `fsync`. On any error the temporary file is removed.
struct AtomicFileWriter {
    let path: String
    private let tempPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private(set) var bytesWritten = 0
    private static let bufferLimit = 1 << 20

    init(path: String) throws {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw FormatError(file: path, "not a file path") }
        var info = stat()
        if stat(folder.isEmpty ? "/" : folder, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
            throw FormatError(file: path, "folder \(folder) does not exist")
        }
        let prefix = (slash == nil ? "" : folder + "/") + "." + name + ".tmp-\(getpid())-"
        var attempt = 0
        while true {
            let candidate = prefix + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let f = open(candidate, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if f >= 0 { tempPath = candidate; fd = f; break }
            let code = errno
            attempt += 1
            if code != EEXIST || attempt > 16 {
                throw FormatError(file: path, "cannot create temporary file: \(MappedFile.systemMessage(code))")
            }
        }
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > Self.bufferLimit { try flush() }
        if bytes.count >= Self.bufferLimit {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += bytes.count
    }

    mutating func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    mutating func writeZeros(_ n: Int) throws {
        guard n > 0 else { return }
        try write([UInt8](repeating: 0, count: n))
    }

    private mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        let b = buffer
        buffer.removeAll(keepingCapacity: true)
        try b.withUnsafeBytes { try writeAll($0) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError(file: path, "write failed: \(MappedFile.systemMessage(errno))")
            }
            p += n
            left -= n
        }
    }

    /// Flushes, syncs and renames the temporary file onto `path`.
    mutating func commit() throws {
        do {
            try flush()
            if fsync(fd) != 0 { throw FormatError(file: path, "fsync failed: \(MappedFile.systemMessage(errno))") }
        } catch {
            abandon()
            throw error
        }
        close(fd)
        fd = -1
        if rename(tempPath, path) != 0 {
            let code = errno
            unlink(tempPath)
            throw FormatError(file: path, "cannot replace file: \(MappedFile.systemMessage(code))")
        }
    }

    /// Runs `body` against a fresh writer for `path`, committing on success and
    /// removing the temporary file when `body` throws.
    static func write(to path: String, _ body: (inout AtomicFileWriter) throws -> Void) throws {
        var w = try AtomicFileWriter(path: path)
        do { try body(&w) } catch { w.abandon(); throw error }
        try w.commit()
    }

    /// Closes and deletes the temporary file (after an error).
    mutating func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tempPath)
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, p, n)
    #else
    return Darwin.write(fd, p, n)
    #endif
}

/// Whole-file atomic writes for callers outside the module (reports, results).
public enum AtomicWrite {
    /// Writes `data` to `path` through a temporary file and `rename`, so `path` is never half-written.
    public static func data(_ data: Data, to path: String) throws {
        try AtomicFileWriter.write(to: path) { w in try data.withUnsafeBytes { try w.write($0) } }
    }

    /// Writes `text` as UTF-8, atomically.
    public static func text(_ text: String, to path: String) throws { try data(Data(text.utf8), to: path) }
}
