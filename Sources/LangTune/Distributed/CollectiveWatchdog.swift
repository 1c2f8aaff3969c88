import Dispatch
import Foundation

/// Ends this process when one collective call waits longer than `timeout`: a peer that hangs
/// (stopped, swapping, a dead link) is not noticed by the launcher the way a dead one is, and
/// every other rank would otherwise wait in its allreduce forever. The launcher sees this rank
/// exit and ends the job. A timer thread watches, since the waiting thread is inside libmpi.
final class CollectiveWatchdog: @unchecked Sendable {
    let rank: Int
    let timeout: Double
    private let lock = NSLock()
    private var waiting: (call: String, since: UInt64)?
    private let timer: DispatchSourceTimer

    init(rank: Int, timeout: Double) {
        self.rank = rank
        self.timeout = timeout
        timer = DispatchSource.makeTimerSource(queue: .global())
        let tick = min(1, max(0.05, timeout / 10))
        timer.schedule(deadline: .now() + tick, repeating: tick)
        timer.setEventHandler { [weak self] in self?.check() }
        timer.resume()
    }

    deinit { timer.cancel() }

    func enter(_ call: String) {
        lock.lock(); waiting = (call, DispatchTime.now().uptimeNanoseconds); lock.unlock()
    }

    func leave() {
        lock.lock(); waiting = nil; lock.unlock()
    }

    private func check() {
        lock.lock()
        let w = waiting
        lock.unlock()
        guard let w, Double(DispatchTime.now().uptimeNanoseconds - w.since) / 1e9 > timeout else { return }
        let message = "Error (rank \(rank)): \(w.call) has waited more than \(Int(timeout)) s for the other ranks "
            + "(--collective-timeout): one of them has hung or the network has failed; stopping so that the launcher ends the job\n"
        FileHandle.standardError.write(Data(message.utf8))
        // Not MPI_Abort: the main thread is inside libmpi, and MPI is initialized for one thread at a time.
        _exit(1)
    }
}
