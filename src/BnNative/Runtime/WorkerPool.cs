using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace BnNative.Runtime;

/// <summary>A piece of parallel work: task <c>index</c> of a fixed count. Tasks must not depend on each other.</summary>
internal interface IParallelJob
{
    void Run(long index);
}

/// <summary>
/// The library's threads: the calling thread plus <c>threads − 1</c> workers that sleep between calls.
/// Work is split into a task count fixed by the shape alone, never by the thread count, and every task
/// writes only its own outputs, so results are bitwise the same for any number of threads; threads only
/// decide who runs which task. One call uses the pool at a time; a call that finds it busy (another host
/// thread is inside the library) runs its tasks on its own thread, with the same results.
/// <para>
/// Failure modes a host can impose are absorbed rather than reported: a worker the OS refuses to create
/// makes the call (and later ones) run with the workers that exist, and a process made by <c>fork()</c>
/// — which inherits the pool's memory but none of its threads, and perhaps a lock held by a thread that
/// no longer exists — starts a fresh pool of its own at its first call.
/// </para>
/// </summary>
internal static unsafe class WorkerPool
{
    /// <summary>
    /// The most threads a call uses, whatever is asked: more than a few per processor only add start-up
    /// time (each new worker costs about 2 ms here) and memory.
    /// </summary>
    public static readonly int MaxThreads = Math.Max(256, 4 * Environment.ProcessorCount);

    /// <summary>Workers run only the library's kernels and bookkeeping: a small stack keeps hundreds of them cheap in address space.</summary>
    private const int WorkerStackBytes = 512 * 1024;

    private static int _threads = DefaultThreadCount();
    private static Pool _pool = new(GetPid());

    public static int Threads => Volatile.Read(ref _threads);

    /// <summary>Sets the thread count; n ≤ 0 means one per processor, and at most <see cref="MaxThreads"/>. Returns the count now in use.</summary>
    public static int SetThreads(int n)
    {
        int count = Math.Min(n > 0 ? n : Environment.ProcessorCount, MaxThreads);
        Volatile.Write(ref _threads, count);
        return count;
    }

    private static int DefaultThreadCount()
    {
        string? text = Environment.GetEnvironmentVariable("BNNATIVE_NUM_THREADS");
        int n = int.TryParse(text, out int parsed) && parsed > 0 ? parsed : Environment.ProcessorCount;
        return Math.Min(n, MaxThreads);
    }

    /// <summary>Runs tasks 0..count−1 of <paramref name="job"/>, in parallel where threads allow.</summary>
    public static void For<TJob>(long count, ref TJob job) where TJob : unmanaged, IParallelJob
    {
        if (count <= 0)
            return;
        int threads = (int)Math.Min(Threads, count);
        var pool = Current();
        if (threads <= 1 || !Monitor.TryEnter(pool.Gate))
        {
            for (long i = 0; i < count; i++)
                job.Run(i);
            FenceStreamingStores();
            return;
        }
        try
        {
            fixed (TJob* jobAddress = &job)
                pool.Run(jobAddress, &RunTask<TJob>, count, threads);
        }
        finally
        {
            Monitor.Exit(pool.Gate);
        }
    }

    private static void RunTask<TJob>(void* job, long index) where TJob : unmanaged, IParallelJob =>
        ((TJob*)job)->Run(index);

    /// <summary>The pool of this process: after a fork, the child replaces the parent's (whose threads it does not have).</summary>
    private static Pool Current()
    {
        var pool = Volatile.Read(ref _pool);
        int pid = GetPid();
        if (pool.ProcessId == pid)
            return pool;
        var fresh = new Pool(pid);
        return Interlocked.CompareExchange(ref _pool, fresh, pool) == pool ? fresh : Volatile.Read(ref _pool);
    }

    /// <summary>
    /// Kernels may write with non-temporal stores, which x86 does not order with other stores: a fence on
    /// every thread that ran tasks makes them visible before the call returns (and before another thread
    /// is told the task is done).
    /// </summary>
    private static void FenceStreamingStores()
    {
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported)
            System.Runtime.Intrinsics.X86.Sse.StoreFence();
    }

    // glibc's getpid is a system call (no cached value), so a forked child sees its own id.
    [DllImport("libc.so.6", EntryPoint = "getpid")]
    private static extern int GetPid();

    /// <summary>The workers of one process, and the job they are running.</summary>
    private sealed class Pool
    {
        public readonly int ProcessId;
        public readonly object Gate = new();
        private readonly object _wakeup = new();
        private Thread[] _workers = [];

        // The job being run: its address and the static thunk that calls Run on it.
        private void* _job;
        private delegate*<void*, long, void> _run;
        private long _taskCount;
        private long _nextTask;
        private int _joinedWorkers;
        private int _openGeneration = -1;
        private Exception? _failure;
        private int _activeWorkers;
        private int _generation;

        // How long a worker keeps polling for the next call before it sleeps: back-to-back calls (a training
        // step) then start without a wake-up, which was measured at 0.1–0.3 ms on the 2-vCPU VM.
        private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 2000; // 500 µs

        public Pool(int processId) => ProcessId = processId;

        public void Run(void* job, delegate*<void*, long, void> run, long count, int threads)
        {
            int workers = EnsureWorkers(threads - 1);
            _job = job;
            _run = run;
            _taskCount = count;
            _nextTask = 0;
            _failure = null;
            lock (_wakeup)
            {
                // Workers read the generation and the active count together, under this lock.
                _activeWorkers = workers;
                _generation++;
                Volatile.Write(ref _openGeneration, _generation);
                Monitor.PulseAll(_wakeup);
            }

            DrainTasks();

            // Close the job, then wait only for the workers that joined it: a worker still waking up (which
            // can take longer than the whole job) finds it closed and leaves it alone, so a call is never
            // slower than its caller alone. Close-then-count here and join-then-check in JoinJob (both full
            // fences) make sure no worker is inside a closed job unnoticed.
            Interlocked.Exchange(ref _openGeneration, -1);
            var spin = new SpinWait();
            while (Volatile.Read(ref _joinedWorkers) != 0)
                spin.SpinOnce(sleep1Threshold: -1);
            _job = null;
            if (_failure is { } failure)
                throw new InvalidOperationException("a parallel task failed", failure);
        }

        private void DrainTasks()
        {
            try
            {
                long index;
                while ((index = Interlocked.Increment(ref _nextTask) - 1) < _taskCount)
                    _run(_job, index);
                FenceStreamingStores();
            }
            catch (Exception e)
            {
                // Stop handing out tasks; the caller reports the failure once every thread is out.
                Interlocked.Exchange(ref _nextTask, long.MaxValue / 2);
                Interlocked.CompareExchange(ref _failure, e, null);
            }
        }

        /// <summary>
        /// Starts workers until there are <paramref name="count"/>; returns how many there are, which is fewer
        /// when the OS refuses a thread (a process or memory limit). The next call tries again.
        /// </summary>
        private int EnsureWorkers(int count)
        {
            if (_workers.Length >= count)
                return count;
            var workers = new Thread[count];
            Array.Copy(_workers, workers, _workers.Length);
            int started = _workers.Length;
            for (; started < count; started++)
            {
                // A new worker starts from the generation before this call's, so it takes part in this call
                // however late its thread starts running.
                int index = started, generation = _generation;
                try
                {
                    var thread = new Thread(() => WorkerLoop(index, generation), WorkerStackBytes) { IsBackground = true, Name = $"bnnative-{index + 1}" };
                    thread.Start();
                    workers[started] = thread;
                }
                catch (Exception)
                {
                    break;
                }
            }
            _workers = started == count ? workers : workers.AsSpan(0, started).ToArray();
            return started;
        }

        private void JoinJob(int generation)
        {
            Interlocked.Increment(ref _joinedWorkers);
            if (Volatile.Read(ref _openGeneration) == generation)
                DrainTasks();
            Interlocked.Decrement(ref _joinedWorkers);
        }

        /// <summary>
        /// Worker <paramref name="index"/> waits for each new call (spinning a little, then sleeping) and takes
        /// part when the call uses it: a call with n threads uses workers 0..n−2.
        /// </summary>
        private void WorkerLoop(int index, int seen)
        {
            while (true)
            {
                long spinUntil = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
                while (Volatile.Read(ref _generation) == seen && System.Diagnostics.Stopwatch.GetTimestamp() < spinUntil)
                    Thread.SpinWait(32);
                int active;
                lock (_wakeup)
                {
                    while (_generation == seen)
                        Monitor.Wait(_wakeup);
                    seen = _generation;
                    active = _activeWorkers;
                }
                if (index < active)
                    JoinJob(seen);
            }
        }
    }
}
