// Scalar activation functions shared by the element-wise activation kernels and by the fused
// epilogues of the sparse/dense products. This file is a function library, not a kernel: the
// TypeScript side prepends it to a kernel's WGSL (src/kernels/activation_ids.ts, withActivations).
//
// Contract (kept stable for the fusing kernels):
//   act_forward(id, z, a)    -> y = f(z)
//   act_derivative(id, z, a) -> dy/dz evaluated at the pre-activation z
// `a` is the activation's scalar parameter (leaky slope, ELU alpha, All-ReLU signed slope, ...).
// Ids are the ACT_* constants below and must match ACTIVATION_IDS in activation_ids.ts.

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;

fn act_forward(id: u32, z: f32, a: f32) -> f32 {
  switch id {
    case 1u: { return max(z, 0.0); }
    default: { return z; }
  }
}

fn act_derivative(id: u32, z: f32, a: f32) -> f32 {
  switch id {
    case 1u: { return select(0.0, 1.0, z > 0.0); }
    default: { return 1.0; }
  }
}
