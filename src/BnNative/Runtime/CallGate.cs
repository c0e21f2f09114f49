using System.Runtime.InteropServices;
using System.Threading;

namespace BnNative.Runtime;

/// <summary>
/// Every export that runs library code passes this gate, so that <c>fork()</c> never copies a process with a
/// thread inside the library. A child inherits the parent's memory but only the forking thread: a call that was
/// running elsewhere would leave behind whatever it held — a lock of the runtime, a garbage collection half
/// done, a worker the collector must wait for — and the child would hang at its first call. The handlers
/// registered with <c>pthread_atfork</c> close the gate and wait for the calls inside to finish (a fork waits at
/// most one call), park the worker threads in the kernel, and open the gate again in the parent; the child
/// starts a fresh worker pool of its own.
/// <para>
/// What the gate cannot cover is the runtime's own bookkeeping of host threads: a fork at the moment another
/// thread enters the library for the first time, or exits after using it, can still leave the child stuck.
/// </para>
/// </summary>
internal static unsafe class CallGate
{
    // Word 0: the calls inside; word 16 (another cache line, since every call writes word 0): 1 while a fork is prepared.
    private static readonly int* Words = Initialize();

    private static int* Inside => Words;
    private static int* Forking => Words + 16;

    public static void Enter()
    {
        while (true)
        {
            Interlocked.Increment(ref *Inside);
            if (Volatile.Read(ref *Forking) == 0)
                return;
            Exit();
            Futex.WaitWhile(Forking, 1);
        }
    }

    public static void Exit()
    {
        // Decrement, then read the flag; Prepare sets the flag, then reads the count: one of them sees the other.
        if (Interlocked.Decrement(ref *Inside) == 0 && Volatile.Read(ref *Forking) != 0)
            Futex.WakeAll(Inside);
    }

    private static int* Initialize()
    {
        var words = (int*)NativeMemory.AlignedAlloc(128, 64);
        NativeMemory.Clear(words, 128);
        // A library image is never unloaded (-z nodelete), so the handlers' addresses stay valid: no DSO handle to
        // unregister them with.
        RegisterForkHandlers(&Prepare, &Parent, &Child, null);
        return words;
    }

    [UnmanagedCallersOnly]
    private static void Prepare()
    {
        Interlocked.Exchange(ref *Forking, 1);
        int inside;
        while ((inside = Volatile.Read(ref *Inside)) != 0)
            Futex.WaitWhile(Inside, inside);
        WorkerPool.ParkForFork();
    }

    [UnmanagedCallersOnly]
    private static void Parent()
    {
        WorkerPool.ResumeAfterFork();
        Volatile.Write(ref *Forking, 0);
        Futex.WakeAll(Forking);
    }

    [UnmanagedCallersOnly]
    private static void Child()
    {
        WorkerPool.StartAfreshAfterFork();
        Volatile.Write(ref *Inside, 0); // callers that were backing off in the parent are not in the child
        Volatile.Write(ref *Forking, 0);
    }

    // What pthread_atfork calls: since glibc 2.34 pthread_atfork itself is linked statically into its callers
    // (libc_nonshared.a), and libc.so.6 exports this.
    [DllImport("libc.so.6", EntryPoint = "__register_atfork")]
    private static extern int RegisterForkHandlers(delegate* unmanaged<void> prepare, delegate* unmanaged<void> parent, delegate* unmanaged<void> child, void* dsoHandle);
}
