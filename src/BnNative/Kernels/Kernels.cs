namespace BnNative.Kernels;

/// <summary>
/// The kernel descriptions. BnGenerator emits, for each, a nested class with one method per loop shape
/// (MembersContiguous, GroupsContiguous) × element type × vector width (see Generated/). A group is what
/// statistics are taken over (BatchNorm: a channel), its members the elements that meet in it.
/// </summary>
[NormKernel("ShiftedSum", "sum += x - shift;",
    Inputs = "x", GroupParams = "shift", Sums = "sum")]
[NormKernel("CenteredSquares", "var d = x - shift - mean; squares += d * d;",
    Inputs = "x", GroupParams = "shift, mean", Sums = "squares")]
[NormKernel("ScaleShift", "y = Fma(x - center, scale, shift);",
    Inputs = "x", Outputs = "y", GroupParams = "center, scale, shift")]
[NormKernel("GradientSums", "sumDy += dy; sumDyCentered += dy * (x - center);",
    Inputs = "x, dy", GroupParams = "center", Sums = "sumDy, sumDyCentered")]
[NormKernel("GradientApply", "dx = Fma(dy, dyScale, Fma(x - center, xScale, bias));",
    Inputs = "x, dy", Outputs = "dx", GroupParams = "center, dyScale, xScale, bias")]
[NormKernel("FrozenGradient", "dx = dy * dyScale; sumDy += dy; sumDyCentered += dy * (x - center);",
    Inputs = "x, dy", Outputs = "dx", GroupParams = "center, dyScale", Sums = "sumDy, sumDyCentered")]
internal static partial class Kernels
{
}
