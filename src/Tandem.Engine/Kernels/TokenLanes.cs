using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Stores a vector whose lanes are tokens to one output column: lane t to <c>o[t·stride]</c>. Lane by lane with
/// constant indices: a loop over a variable index makes the JIT spill the whole vector to the stack for every lane,
/// which cost the multi-token tiles up to a third of their time on short rows.
/// </summary>
internal static unsafe class TokenLanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store16(float* o, long stride, Vector512<float> v)
    {
        Store8(o, stride, v.GetLower());
        Store8(o + 8 * stride, stride, v.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store8(float* o, long stride, Vector256<float> v)
    {
        Store4(o, stride, v.GetLower());
        Store4(o + 4 * stride, stride, v.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store4(float* o, long stride, Vector128<float> v)
    {
        o[0] = v.ToScalar();
        o[stride] = v.GetElement(1);
        o[2 * stride] = v.GetElement(2);
        o[3 * stride] = v.GetElement(3);
    }
}
