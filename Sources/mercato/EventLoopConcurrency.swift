import Atomics
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Swift concurrency's global executor on NIO's event loops, jobs run as the runtime's own
/// global executor runs them.
///
/// Why not `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`:
/// it runs each job *on the event loop's serial executor*, so the runtime takes the job for
/// isolated to that loop, and every call into a nonisolated `async` function (which runs on the
/// generic executor) has to switch executors: the job is enqueued again and run on the next
/// loop tick. A request ran 76-92 jobs that way and runs 3-4 this way (`bench/profile --jobs`,
/// a uprobe on `swift_job_run`; the bare framework runs 1), each a pass through the loop's task
/// queue. Here a job runs with the generic executor (`swift_job_run(job, generic)`, what the
/// default global executor does), so those calls continue in place; the job still goes to the
/// calling thread's loop when there is one (`MultiThreadedEventLoopGroup.any()` prefers it), so
/// a request's task, its storage calls and its answer's write stay on one thread.
enum EventLoopConcurrency {
    /// `swift_task_enqueueGlobal_hook`'s type, `(Job *, the runtime's own enqueue) -> void` in the
    /// Swift calling convention. It is declared here as a C function: for two pointer arguments
    /// and no result the two conventions pass the same registers on x86-64 and arm64, and a C
    /// function keeps every register the Swift convention expects kept. (A `@convention(thin)`
    /// Swift function, as NIO declares it, crashes Swift 6.3's region-based isolation checker.)
    private typealias EnqueueGlobalHook = @convention(c) (UnsafeMutableRawPointer?, UnsafeRawPointer?) -> Void

    /// Installs the hook once, before the server starts; `false` when it cannot (another hook
    /// is there already, or the runtime has none), and Swift concurrency keeps its own threads.
    static func install() -> Bool {
        guard MemoryLayout<UnownedSerialExecutor>.size == MemoryLayout<(UInt, UInt)>.size,
              MemoryLayout<UnownedJob>.size == MemoryLayout<UnsafeMutableRawPointer>.size,
              let symbol = dlsym(dlopen(nil, RTLD_NOW), "swift_task_enqueueGlobal_hook") else { return false }
        let slot = UnsafeAtomic<UnsafeRawPointer?>(at: symbol.assumingMemoryBound(to: UnsafeRawPointer?.AtomicRepresentation.self))
        let hook: EnqueueGlobalHook = { job, _ in
            guard let job else { return }
            // The calling thread's loop when it is one of the group's, else the next one.
            let unowned = unsafe unsafeBitCast(job, to: UnownedJob.self)
            MultiThreadedEventLoopGroup.singleton.any().execute { swiftJobRun(unowned, EventLoopConcurrency.generic) }
        }
        return slot.compareExchange(expected: nil, desired: unsafe unsafeBitCast(hook, to: UnsafeRawPointer.self),
                                    ordering: .sequentiallyConsistent).exchanged
    }

    /// The generic executor: a null identity and implementation (`SerialExecutorRef::generic()`).
    fileprivate static let generic = unsafe unsafeBitCast((UInt(0), UInt(0)), to: UnownedSerialExecutor.self)

}

/// The runtime's entry that runs a job on an executor (the standard library declares it the
/// same way, internally, behind `UnownedJob.runSynchronously(on:)`).
@_silgen_name("swift_job_run")
private func swiftJobRun(_ job: UnownedJob, _ executor: UnownedSerialExecutor)
