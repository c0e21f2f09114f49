namespace BnNative.Kernels;

/// <summary>
/// The kernel descriptions. BnGenerator emits, for each, a nested class with one method per loop shape
/// (MembersContiguous, GroupsContiguous) × element type × vector width (see Generated/). A group is what
/// statistics are taken over (BatchNorm: a channel; LayerNorm: a position), its members the elements that
/// meet in it.
/// </summary>
// Two-pass statistics (corrected): the sum, then deviations and squares about the mean it gives. Neither pass
// shifts by a data value, so a far-off first value cannot inflate the terms whose rounding reaches the mean.
[NormKernel("Sum", "sum += x;",
    Inputs = "x", Sums = "sum")]
[NormKernel("CenteredMoments", "var d = x - center; deviations += d; squares += d * d;",
    Inputs = "x", GroupParams = "center", Sums = "deviations, squares")]
[NormKernel("ScaleShift", "y = Fma(x - center, scale, shift);",
    Inputs = "x", Outputs = "y", GroupParams = "center, scale, shift")]
[NormKernel("GradientSums", "sumDy += dy; sumDyCentered += dy * (x - center);",
    Inputs = "x, dy", GroupParams = "center", Sums = "sumDy, sumDyCentered")]
// dy − mean(dy) first: a huge dy (1e38 in F32) whose mean cancels it gives dx = 0, not ∞ − ∞.
[NormKernel("GradientApply", "dx = Fma(dy - dyCenter, dyScale, (x - center) * xScale);",
    Inputs = "x, dy", Outputs = "dx", GroupParams = "center, dyCenter, dyScale, xScale")]
// One pass of shifted sums (BatchNorm channels-last tasks, LayerNorm rows in L1), with the magnitudes that
// bound its rounding (see OnePass.Accepts for when it is exact enough).
[NormKernel("ShiftedMoments", "var d = x - shift; sum += d; squares += d * d; magnitudes += Abs(x);",
    Inputs = "x", GroupParams = "shift", Sums = "sum, squares, magnitudes")]
// Outputs staged in L1 when they start off the vector boundary a RowGroup kernel streams from (see Geometry.StreamAligned).
[NormKernel("Copy", "y = x;",
    Inputs = "x", Outputs = "y")]
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
