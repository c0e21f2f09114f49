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
/// makes the call (and later ones) run with the workers that exist. Around <c>fork()</c> (see
/// <see cref="CallGate"/>) the workers are parked asleep in the kernel, and the child, which has none of
/// them, starts a pool of its own. Workers wait only on futexes (<see cref="Futex"/>), never on a .NET
/// lock, so a fork finds no lock held.
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
    private static Pool _pool = new();

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
        var pool = Volatile.Read(ref _pool);
        if (threads <= 1 || !pool.TryAcquire())
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
            pool.Release();
        }
    }

    private static void RunTask<TJob>(void* job, long index) where TJob : unmanaged, IParallelJob =>
        ((TJob*)job)->Run(index);

    /// <summary>Before a fork (no call is inside the library): every worker asleep in the kernel.</summary>
    internal static void ParkForFork() => Volatile.Read(ref _pool).Park();

    /// <summary>In the parent after a fork: the workers resume waiting for calls.</summary>
    internal static void ResumeAfterFork() => Volatile.Read(ref _pool).Resume();

    /// <summary>In the child after a fork: the parent's workers do not exist here, so a new pool starts.</summary>
    internal static void StartAfreshAfterFork() => Volatile.Write(ref _pool, new Pool());

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

    /// <summary>The workers of one process, and the job they are running.</summary>
    private sealed class Pool
    {
        // Words the threads share live outside the managed heap, where the collector cannot move them: the call
        // generation (workers sleep on it between calls), on another cache line the word parked workers sleep on, and
        // after them the task ranges (see _participants).
        private readonly int* _words = AllocateWords();
        private int* Generation => _words;
        private int* Parked => _words + 16;
        private long* Ranges => (long*)((byte*)_words + FutexBytes);

        private int _busy;
        private int _sleepers;
        private int _parking;
        private Thread[] _workers = [];

        // The job being run: its address and the static thunk that calls Run on it.
        private void* _job;
        private delegate*<void*, long, void> _run;
        private int _participants;
        // Each thread of a call owns a contiguous range of its tasks (the caller the first, worker i the (i + 2)th), claims
        // them from the range's front and, when its range is spent, those left in the others'. The same thread thus takes
        // the same tasks in every call with the same shape, and the tasks of one call's passes over the same rows: what
        // it read or wrote last can still be in its own L2 (2 MB per core here); one counter for all handed tasks to
        // whichever thread came first. Measured with 2 threads (both images in one process, medians): resnet-late NHWC
        // forward 0.102 → 0.096 ms, renorm-shaped BatchNorm forward 0.191 → 0.182, resnet-early NHWC 1.50 → 1.45.
        private int _joinedWorkers;
        private int _openGeneration = -1;
        private Exception? _failure;
        private int _activeWorkers;

        // How long a worker keeps polling for the next call before it sleeps: back-to-back calls (a training
        // step) then start without a wake-up, which was measured at 0.1–0.3 ms on the 2-vCPU VM.
        private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 2000; // 500 µs

        // A gap this long between two polls means the worker was descheduled: another runnable thread shares its processor
        // (another library's spinning workers, such as OpenMP's between its calls), and polling only takes turns with it,
        // so the worker holds a task when its turn ends and the call waits a time slice for it. Such a worker sleeps in the
        // kernel at once instead and is woken for the next call. Measured beside a busy loop on the other processor (mlp
        // forward, 2 threads, means of 200 calls, medians of 5 alternating runs): polling 0.363 ms, with this check 0.283,
        // 1 thread 0.291; alone, 0.177 and 0.172. (Never polling: 0.251 beside the busy loop, but 0.229 alone.)
        private static readonly long DescheduledTicks = System.Diagnostics.Stopwatch.Frequency / 50000; // 20 µs

        /// <summary>The futex words' part of the shared block: two cache lines.</summary>
        private const int FutexBytes = 128;

        /// <summary>Two words per thread of a call: the next task of its range and the range's end, each pair on its own 128 bytes.</summary>
        private const int RangeStride = 16;

        /// <summary>
        /// The futex words (128 bytes), then the ranges of up to MaxThreads threads: one block, kept for the process's life
        /// (one pool per process; a fork child makes its own).
        /// </summary>
        private static int* AllocateWords()
        {
            nuint bytes = (nuint)(FutexBytes + MaxThreads * RangeStride * sizeof(long));
            var words = (int*)NativeMemory.AlignedAlloc(bytes, 128);
            NativeMemory.Clear(words, bytes);
            return words;
        }

        public bool TryAcquire() => Interlocked.CompareExchange(ref _busy, 1, 0) == 0;

        public void Release() => Volatile.Write(ref _busy, 0);

        public void Run(void* job, delegate*<void*, long, void> run, long count, int threads)
        {
            int workers = EnsureWorkers(threads - 1);
            _job = job;
            _run = run;
            int participants = workers + 1;
            for (int k = 0; k < participants; k++)
            {
                Ranges[k * RangeStride] = count * k / participants;
                Ranges[k * RangeStride + 1] = count * (k + 1) / participants;
            }
            _participants = participants;
            _failure = null;
            _activeWorkers = workers;
            // Open the job, publish it (the increment is a full fence, after the writes above), then wake the
            // workers that sleep; a worker counts itself a sleeper before it rechecks the generation, so either
            // it sees the new one or this sees it sleeping.
            int generation = Interlocked.Increment(ref *Generation);
            Volatile.Write(ref _openGeneration, generation);
            if (Volatile.Read(ref _sleepers) != 0)
                Futex.WakeAll(Generation);

            DrainTasks(0);

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

        /// <summary>The tasks of thread <paramref name="participant"/>'s own range, then those left in the others', in turn after it.</summary>
        private void DrainTasks(int participant)
        {
            int participants = _participants;
            try
            {
                for (int k = 0; k < participants; k++)
                {
                    long* range = Ranges + (participant + k) % participants * RangeStride;
                    long index, end = range[1];
                    while ((index = Interlocked.Increment(ref *range) - 1) < end)
                        _run(_job, index);
                }
                FenceStreamingStores();
            }
            catch (Exception e)
            {
                // Stop handing out tasks; the caller reports the failure once every thread is out.
                for (int k = 0; k < participants; k++)
                    Interlocked.Exchange(ref Ranges[k * RangeStride], long.MaxValue / 2);
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
                int index = started, generation = Volatile.Read(ref *Generation);
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

        private void JoinJob(int index, int generation)
        {
            Interlocked.Increment(ref _joinedWorkers);
            if (Volatile.Read(ref _openGeneration) == generation)
                DrainTasks(index + 1);
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
                long last = System.Diagnostics.Stopwatch.GetTimestamp(), spinUntil = last + SpinTicks;
                while (Volatile.Read(ref *Generation) == seen && Volatile.Read(ref _parking) == 0)
                {
                    Thread.SpinWait(32);
                    long now = System.Diagnostics.Stopwatch.GetTimestamp();
                    if (now >= spinUntil || now - last > DescheduledTicks)
                        break;
                    last = now;
                }
                while (Volatile.Read(ref *Generation) == seen)
                {
                    Interlocked.Increment(ref _sleepers);
                    Futex.WaitWhile(Generation, seen);
                    Interlocked.Decrement(ref _sleepers);
                }
                seen = Volatile.Read(ref *Generation);
                if (index < Volatile.Read(ref _activeWorkers))
                    JoinJob(index, seen);
            }
        }

        /// <summary>
        /// Waits until every worker sleeps in the kernel, which the kernel itself counts: sleepers on the generation
        /// word are moved to the parked word (none is woken), and no call can start meanwhile.
        /// </summary>
        public void Park()
        {
            Volatile.Write(ref _parking, 1);
            int parked = 0;
            while (parked < _workers.Length)
            {
                parked += Futex.MoveSleepers(Generation, Volatile.Read(ref *Generation), Parked);
                if (parked < _workers.Length)
                    Thread.Yield();
            }
        }

        public void Resume()
        {
            Volatile.Write(ref _parking, 0);
            Futex.WakeAll(Parked);
        }
    }
}
