/// The suffix automaton of a byte string: every substring of the string, and nothing
/// else, is a path from the root, so "is this still a substring?" costs one transition
/// per byte however long the string is (Blumer et al. 1985; linear-time construction).
struct SuffixAutomaton: Sendable {
    private var next: [[UInt8: Int32]] = [[:]]
    private var link: [Int32] = [-1]
    private var length: [Int32] = [0]

    init(_ bytes: [UInt8]) {
        next.reserveCapacity(2 * bytes.count + 1)
        var last: Int32 = 0
        for b in bytes { last = extend(last, b) }
    }

    /// The root: the empty string.
    static let root: Int32 = 0

    /// The state after reading `byte` from `state`, or nil when the string read so far plus
    /// `byte` is not a substring.
    func step(_ state: Int32, _ byte: UInt8) -> Int32? { next[Int(state)][byte] }

    /// Every byte that can follow `state`, with the state it leads to.
    func successors(_ state: Int32) -> [UInt8: Int32] { next[Int(state)] }

    private mutating func extend(_ last: Int32, _ b: UInt8) -> Int32 {
        let cur = Int32(next.count)
        next.append([:]); link.append(0); length.append(length[Int(last)] + 1)
        var p = last
        while p != -1 && next[Int(p)][b] == nil {
            next[Int(p)][b] = cur
            p = link[Int(p)]
        }
        if p == -1 { return cur }
        let q = next[Int(p)][b]!
        if length[Int(p)] + 1 == length[Int(q)] {
            link[Int(cur)] = q
            return cur
        }
        // Split q: a clone takes the shorter strings that now also end at `cur`.
        let clone = Int32(next.count)
        next.append(next[Int(q)]); link.append(link[Int(q)]); length.append(length[Int(p)] + 1)
        while p != -1 && next[Int(p)][b] == q {
            next[Int(p)][b] = clone
            p = link[Int(p)]
        }
        link[Int(q)] = clone
        link[Int(cur)] = clone
        return cur
    }
}
