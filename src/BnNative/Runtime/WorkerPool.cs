using System;
using System.Threading;

namespace BnNative.Runtime;

/// <summary>A piece of parallel work: task <c>index</c> of a fixed count. Tasks must not depend on each other.</summary>
internal interface IParallelJob
{
    void Run(int index);
}

/// <summary>
/// The library's threads: the calling thread plus <c>threads − 1</c> workers that sleep between calls.
/// Work is split into a task count fixed by the shape alone, never by the thread count, and every task
/// writes only its own outputs, so results are bitwise the same for any number of threads; threads only
/// decide who runs which task. One call uses the pool at a time; a call that finds it busy (another host
/// thread is inside the library) runs its tasks on its own thread, with the same results.
/// </summary>
internal static unsafe class WorkerPool
{
    private static readonly object Gate = new();
    private static int _threads = DefaultThreadCount();
    private static Thread[] _workers = [];

    // The job being run: its address and the static thunk that calls Run on it.
    private static void* _job;
    private static delegate*<void*, int, void> _run;
    private static int _taskCount;
    private static int _nextTask;
    private static int _joinedWorkers;
    private static int _openGeneration = -1;
    private static Exception? _failure;
    private static int _activeWorkers;
    private static int _generation;
    private static readonly object Wakeup = new();

    // How long a worker keeps polling for the next call before it sleeps: back-to-back calls (a training
    // step) then start without a wake-up, which was measured at 0.1–0.3 ms on the 2-vCPU VM.
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 2000; // 500 µs

    public static int Threads => Volatile.Read(ref _threads);

    /// <summary>Sets the thread count; n ≤ 0 means one per processor. Returns the count now in use.</summary>
    public static int SetThreads(int n)
    {
        int count = n > 0 ? n : Environment.ProcessorCount;
        lock (Gate)
            _threads = count;
        return count;
    }

    private static int DefaultThreadCount()
    {
        string? text = Environment.GetEnvironmentVariable("BNNATIVE_NUM_THREADS");
        return int.TryParse(text, out int n) && n > 0 ? n : Environment.ProcessorCount;
    }

    /// <summary>Runs tasks 0..count−1 of <paramref name="job"/>, in parallel where threads allow.</summary>
    public static void For<TJob>(int count, ref TJob job) where TJob : unmanaged, IParallelJob
    {
        if (count <= 0)
            return;
        int threads = Math.Min(Threads, count);
        if (threads <= 1 || !Monitor.TryEnter(Gate))
        {
            for (int i = 0; i < count; i++)
                job.Run(i);
            FenceStreamingStores();
            return;
        }
        try
        {
            fixed (TJob* jobAddress = &job)
                RunShared(jobAddress, &RunTask<TJob>, count, threads);
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private static void RunTask<TJob>(void* job, int index) where TJob : unmanaged, IParallelJob =>
        ((TJob*)job)->Run(index);

    private static void RunShared(void* job, delegate*<void*, int, void> run, int count, int threads)
    {
        EnsureWorkers(threads - 1);
        _job = job;
        _run = run;
        _taskCount = count;
        _nextTask = 0;
        _failure = null;
        lock (Wakeup)
        {
            // Workers read the generation and the active count together, under this lock.
            _activeWorkers = threads - 1;
            _generation++;
            Volatile.Write(ref _openGeneration, _generation);
            Monitor.PulseAll(Wakeup);
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

    private static void DrainTasks()
    {
        try
        {
            int index;
            while ((index = Interlocked.Increment(ref _nextTask) - 1) < _taskCount)
                _run(_job, index);
            FenceStreamingStores();
        }
        catch (Exception e)
        {
            // Stop handing out tasks; the caller reports the failure once every thread is out.
            Interlocked.Exchange(ref _nextTask, int.MaxValue / 2);
            Interlocked.CompareExchange(ref _failure, e, null);
        }
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

    private static void EnsureWorkers(int count)
    {
        if (_workers.Length >= count)
            return;
        var workers = new Thread[count];
        Array.Copy(_workers, workers, _workers.Length);
        for (int i = _workers.Length; i < count; i++)
        {
            // A new worker starts from the generation before this call's, so it takes part in this call
            // however late its thread starts running.
            int index = i, generation = _generation;
            workers[i] = new Thread(() => WorkerLoop(index, generation)) { IsBackground = true, Name = $"bnnative-{i + 1}" };
            workers[i].Start();
        }
        _workers = workers;
    }

    private static void JoinJob(int generation)
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
    private static void WorkerLoop(int index, int seen)
    {
        while (true)
        {
            long spinUntil = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref _generation) == seen && System.Diagnostics.Stopwatch.GetTimestamp() < spinUntil)
                Thread.SpinWait(32);
            int active;
            lock (Wakeup)
            {
                while (_generation == seen)
                    Monitor.Wait(Wakeup);
                seen = _generation;
                active = _activeWorkers;
            }
            if (index < active)
                JoinJob(seen);
        }
    }
}
