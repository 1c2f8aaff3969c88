#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only memory maps of whole files.
///
/// Model files are mapped rather than read so that loading costs page faults
/// only for the bytes actually touched, and several tensors can share one
/// mapping through a single `ByteStorage`.
public enum MappedFile {
    /// Maps `path` read-only. The mapping lives as long as the returned storage.
    ///
    /// Throws a `FormatError` naming the file for a missing file, a directory,
    /// an empty file, or any failing system call.
    public static func map(_ path: String) throws -> ByteStorage {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw FormatError(file: path, "no such file") }
            throw FormatError(file: path, "cannot open: \(systemMessage(code))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw FormatError(file: path, "cannot stat: \(systemMessage(errno))")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FormatError(file: path, "is a directory, not a file") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FormatError(file: path, "is not a regular file") }
        guard info.st_size > 0 else { throw FormatError(file: path, "file is empty") }
        guard let size = Int(exactly: info.st_size) else { throw FormatError(file: path, "file is too large to map") }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw FormatError(file: path, "cannot map \(size) bytes: \(systemMessage(errno))")
        }
        return ByteStorage(base: UnsafeRawPointer(p), count: size) { base, count in
            _ = munmap(UnsafeMutableRawPointer(mutating: base), count)
        }
    }

    static func systemMessage(_ code: Int32) -> String {
        if let s = strerror(code) { return String(cString: s) }
        return "error \(code)"
    }
}
