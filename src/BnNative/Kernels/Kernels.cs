namespace BnNative.Kernels;

/// <summary>
/// The kernel descriptions. BnGenerator emits, for each, a nested class with one method per loop shape
/// (MembersContiguous, GroupsContiguous) × element type × vector width (see Generated/). A group is what
/// statistics are taken over (BatchNorm: a channel; LayerNorm: a position), its members the elements that
/// meet in it.
/// </summary>
[NormKernel("ShiftedSum", "sum += x - shift;",
    Inputs = "x", GroupParams = "shift", Sums = "sum")]
[NormKernel("CenteredSquares", "var d = x - shift - mean; squares += d * d;",
    Inputs = "x", GroupParams = "shift, mean", Sums = "squares")]
[NormKernel("ScaleShift", "y = Fma(x - center, scale, shift);",
    Inputs = "x", Outputs = "y", GroupParams = "center, scale, shift")]
[NormKernel("GradientSums", "sumDy += dy; sumDyCentered += dy * (x - center);",
    Inputs = "x, dy", GroupParams = "center", Sums = "sumDy, sumDyCentered")]
// dy − mean(dy) first: a huge dy (1e38 in F32) whose mean cancels it gives dx = 0, not ∞ − ∞.
[NormKernel("GradientApply", "dx = Fma(dy - dyCenter, dyScale, (x - center) * xScale);",
    Inputs = "x, dy", Outputs = "dx", GroupParams = "center, dyCenter, dyScale, xScale")]
// One pass of shifted sums, for LayerNorm rows that sit in L1 (see LayerNorm.RowStatistics for when it is exact enough).
[NormKernel("ShiftedMoments", "var d = x - shift; sum += d; squares += d * d;",
    Inputs = "x", GroupParams = "shift", Sums = "sum, squares")]
// Layer Normalization: a group is a position, its members the channels; gamma and beta are per member.
[NormKernel("LayerNormApply", "y = Fma((x - center) * scale, gamma, beta);",
    Inputs = "x", Outputs = "y", GroupParams = "center, scale", MemberParams = "gamma, beta")]
[NormKernel("LayerNormGradientSums", "var g = dy * gamma; sumG += g; sumGCentered += g * (x - center);",
    Inputs = "x, dy", GroupParams = "center", MemberParams = "gamma", Sums = "sumG, sumGCentered")]
[NormKernel("LayerNormGradientApply", "dx = Fma(dy * gamma - meanG, scale, (x - center) * xScale);",
    Inputs = "x, dy", Outputs = "dx", GroupParams = "center, meanG, scale, xScale", MemberParams = "gamma")]
// dgamma and dbeta of Layer Normalization: here a group is a channel and its members the positions.
[NormKernel("LayerNormParameterGradients", "sumDy += dy; sumDyNormalized += dy * ((x - center) * scale);",
    Inputs = "x, dy", MemberParams = "center, scale", Sums = "sumDy, sumDyNormalized")]
internal static partial class Kernels
{
}
