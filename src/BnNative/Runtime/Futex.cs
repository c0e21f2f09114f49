using System.Runtime.InteropServices;

namespace BnNative.Runtime;

/// <summary>
/// Linux futexes: sleeping until a 32-bit word changes, and waking its sleepers, with no lock in user space.
/// The library waits only with these because a process made by <c>fork()</c> must find nothing held by a
/// thread it does not have: .NET's Monitor, Condition and wait handles share one process-wide lock, which a
/// child inherits held if any thread of the parent was inside it at the fork (and then hangs).
/// A thread inside one of these calls is in a P/Invoke, which the runtime counts as outside managed code.
/// </summary>
internal static unsafe class Futex
{
    private const int Private = 128; // FUTEX_PRIVATE_FLAG: the word is not shared with other processes
    private const int WaitOperation = 0 | Private;
    private const int WakeOperation = 1 | Private;
    private const int RequeueOperation = 4 | Private; // FUTEX_CMP_REQUEUE

    private static readonly long SystemCall = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 98 : 202;

    /// <summary>Sleeps while <c>*word == value</c>; returns at once if it differs, on a wake-up, or spuriously: callers recheck.</summary>
    public static void WaitWhile(int* word, int value) => Call(word, WaitOperation, value, 0, null, 0);

    /// <summary>Wakes every thread sleeping on <paramref name="word"/>.</summary>
    public static void WakeAll(int* word) => Call(word, WakeOperation, int.MaxValue, 0, null, 0);

    /// <summary>
    /// Moves every thread sleeping on <paramref name="from"/> (if it still holds <paramref name="expected"/>) to
    /// sleep on <paramref name="to"/> instead, waking none; returns how many it moved, each of them certainly
    /// asleep in the kernel, or 0.
    /// </summary>
    public static int MoveSleepers(int* from, int expected, int* to)
    {
        long moved = Call(from, RequeueOperation, 0, int.MaxValue, to, expected);
        return moved > 0 ? (int)moved : 0;
    }

    // syscall(SYS_futex, uaddr, op, val, timeout-or-val2, uaddr2, val3); -1 (EAGAIN, EINTR) means "recheck".
    [DllImport("libc.so.6", EntryPoint = "syscall")]
    private static extern long Syscall(long number, int* word, int operation, int value, nint value2, int* word2, int value3);

    private static long Call(int* word, int operation, int value, nint value2, int* word2, int value3) =>
        Syscall(SystemCall, word, operation, value, value2, word2, value3);
}
