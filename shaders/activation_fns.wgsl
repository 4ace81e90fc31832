// Scalar activation functions shared by the element-wise activation kernels and by the fused
// epilogues of the sparse/dense products. This file is a function library, not a kernel: the
// TypeScript side prepends it to a kernel's WGSL (src/kernels/activation_ids.ts, withActivations).
//
// Contract (kept stable for the fusing kernels):
//   act_forward(id, z, a)    -> y = f(z)
//   act_derivative(id, z, a) -> dy/dz evaluated at the pre-activation z
// `a` is the activation's scalar parameter (leaky slope, ELU alpha, All-ReLU signed slope, sin/cos
// frequency); activations without a parameter ignore it. Ids are the ACT_* constants below and
// must match ACTIVATION_IDS in activation_ids.ts. Unknown ids behave as identity.
//
// Conventions: piecewise functions take the z > 0 branch only for z strictly positive, so every
// derivative at a kink is the left one (relu'(0) = 0, abs'(0) = 0, hard_tanh'(±1) = 0).
// Numerically stable forms: no exp() of a positive argument, so nothing overflows for large |z|
// (softplus, sigmoid, silu, mish, tanh, gelu are finite and accurate for any finite z).

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_LEAKY_RELU: u32 = 2u; // a = negative slope
const ACT_ELU: u32 = 3u; // a = alpha
const ACT_SELU: u32 = 4u;
const ACT_GELU: u32 = 5u; // tanh approximation
const ACT_GELU_ERF: u32 = 6u; // exact form z * Phi(z)
const ACT_SILU: u32 = 7u; // = swish
const ACT_MISH: u32 = 8u;
const ACT_SOFTPLUS: u32 = 9u;
const ACT_SIGMOID: u32 = 10u;
const ACT_TANH: u32 = 11u;
const ACT_HARD_TANH: u32 = 12u;
const ACT_SIN: u32 = 13u; // sin(a z)
const ACT_COS: u32 = 14u; // cos(a z)
const ACT_GAUSSIAN: u32 = 15u; // exp(-z^2 / 2)
const ACT_ABS: u32 = 16u;
const ACT_INVERSE: u32 = 17u; // -z
const ACT_STEP: u32 = 18u; // 1 if z > 0 else 0
const ACT_ALL_RELU: u32 = 19u; // z if z > 0 else a z

const SELU_LAMBDA: f32 = 1.0507009873554805;
const SELU_ALPHA: f32 = 1.6732632423543772;
const GELU_K: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_C: f32 = 0.044715;
const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// exp(z) - 1 without cancellation near 0 (degree-5 Taylor polynomial for |z| < 0.1, relative
// error < 2e-8 there; exp(z) - 1 elsewhere, where the cancellation costs at most ~1e-6 relative).
fn act_expm1(z: f32) -> f32 {
  if (abs(z) < 0.1) {
    return z * (1.0 + z * (0.5 + z * (0.16666667 + z * (0.041666668 + z * 0.008333334))));
  }
  return exp(z) - 1.0;
}

// log(1 + x) for x >= 0 without the cancellation of log() near 1 (Taylor series below 0.05,
// truncation error < x^6 / 6 relative).
fn act_log1p(x: f32) -> f32 {
  if (x < 0.05) {
    return x * (1.0 - x * (0.5 - x * (0.33333334 - x * (0.25 - x * 0.2))));
  }
  return log(1.0 + x);
}

// Logistic sigmoid, stable for any z: exp() only of -|z|.
fn act_sigmoid(z: f32) -> f32 {
  let e = exp(-abs(z));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
}

// tanh, stable for any z (the builtin may overflow in sinh/cosh on some platforms); odd Taylor
// polynomial for |z| < 0.1 (truncation < 3e-10 relative), (1 - e) / (1 + e) with e = exp(-2|z|).
fn act_tanh(z: f32) -> f32 {
  let x = abs(z);
  if (x < 0.1) {
    let z2 = z * z;
    return z * (1.0 + z2 * (-0.33333334 + z2 * (0.13333334 - z2 * 0.053968254)));
  }
  let e = exp(-2.0 * x);
  return sign(z) * (1.0 - e) / (1.0 + e);
}

// The two above per component (the LSTM kernels' gates).
fn act_sigmoid4(z: vec4f) -> vec4f {
  return vec4f(act_sigmoid(z.x), act_sigmoid(z.y), act_sigmoid(z.z), act_sigmoid(z.w));
}

fn act_tanh4(z: vec4f) -> vec4f {
  return vec4f(act_tanh(z.x), act_tanh(z.y), act_tanh(z.z), act_tanh(z.w));
}

// softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)).
fn act_softplus(z: f32) -> f32 {
  return max(z, 0.0) + act_log1p(exp(-abs(z)));
}

// erfc(x) for x >= 0: Chebyshev-fitted exponential form (Press et al., Numerical Recipes, 2nd ed.,
// §6.2), fractional error < 1.2e-7 for every x >= 0, so the tail is relatively accurate too.
fn act_erfc_pos(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * x);
  let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(-x * x + poly);
}

// Standard normal CDF Phi(z) = erfc(-z / sqrt 2) / 2 (relative error ~1e-7 on both tails).
fn act_phi(z: f32) -> f32 {
  let h = 0.5 * act_erfc_pos(abs(z) * INV_SQRT2);
  return select(h, 1.0 - h, z > 0.0);
}

// Mish helpers: T = tanh(softplus(z)) and S = sech^2(softplus(z)) in closed forms of exp(-|z|).
//   z <= 0: e = exp(z),  g = e (e + 2), T = g / (g + 2), S = 4 (g + 1) / (g + 2)^2
//   z >  0: w = exp(-z), d = 1 + 2w + 2w^2, T = (1 + 2w) / d, S = 4 w^2 (1 + w)^2 / d^2
fn act_mish_t(z: f32) -> vec2f {
  let e = exp(-abs(z));
  if (z > 0.0) {
    let d = 1.0 + 2.0 * e + 2.0 * e * e;
    let s = 2.0 * e * (1.0 + e) / d;
    return vec2f((1.0 + 2.0 * e) / d, s * s);
  }
  let g = e * (e + 2.0);
  let q = g + 2.0;
  return vec2f(g / q, 4.0 * (g + 1.0) / (q * q));
}

fn act_forward(id: u32, z: f32, a: f32) -> f32 {
  switch id {
    case ACT_RELU: { return max(z, 0.0); }
    case ACT_LEAKY_RELU, ACT_ALL_RELU: { return select(a * z, z, z > 0.0); }
    case ACT_ELU: { return select(a * act_expm1(min(z, 0.0)), z, z > 0.0); }
    case ACT_SELU: { return SELU_LAMBDA * select(SELU_ALPHA * act_expm1(min(z, 0.0)), z, z > 0.0); }
    case ACT_GELU: {
      // 0.5 z (1 + tanh u) = z sigmoid(2u): no cancellation for z << 0.
      let u = GELU_K * (z + GELU_C * z * z * z);
      return z * act_sigmoid(2.0 * u);
    }
    case ACT_GELU_ERF: { return z * act_phi(z); }
    case ACT_SILU: { return z * act_sigmoid(z); }
    case ACT_MISH: { return z * act_mish_t(z).x; }
    case ACT_SOFTPLUS: { return act_softplus(z); }
    case ACT_SIGMOID: { return act_sigmoid(z); }
    case ACT_TANH: { return act_tanh(z); }
    case ACT_HARD_TANH: { return clamp(z, -1.0, 1.0); }
    case ACT_SIN: { return sin(a * z); }
    case ACT_COS: { return cos(a * z); }
    case ACT_GAUSSIAN: { return exp(-0.5 * z * z); }
    case ACT_ABS: { return abs(z); }
    case ACT_INVERSE: { return -z; }
    case ACT_STEP: { return select(0.0, 1.0, z > 0.0); }
    default: { return z; }
  }
}

fn act_derivative(id: u32, z: f32, a: f32) -> f32 {
  switch id {
    case ACT_RELU: { return select(0.0, 1.0, z > 0.0); }
    case ACT_LEAKY_RELU, ACT_ALL_RELU: { return select(a, 1.0, z > 0.0); }
    case ACT_ELU: { return select(a * exp(min(z, 0.0)), 1.0, z > 0.0); }
    case ACT_SELU: { return SELU_LAMBDA * select(SELU_ALPHA * exp(min(z, 0.0)), 1.0, z > 0.0); }
    case ACT_GELU: {
      // d/dz [z s(2u)] = s(2u) + 2 z s(2u) s(-2u) u'
      let z2 = z * z;
      let u = GELU_K * (z + GELU_C * z2 * z);
      let du = GELU_K * (1.0 + 3.0 * GELU_C * z2);
      let s = act_sigmoid(2.0 * u);
      let sn = act_sigmoid(-2.0 * u);
      return s + 2.0 * z * s * sn * du;
    }
    case ACT_GELU_ERF: { return act_phi(z) + z * INV_SQRT_2PI * exp(-0.5 * z * z); }
    case ACT_SILU: {
      let s = act_sigmoid(z);
      return s + z * s * act_sigmoid(-z);
    }
    case ACT_MISH: {
      let ts = act_mish_t(z);
      return ts.x + z * ts.y * act_sigmoid(z);
    }
    case ACT_SOFTPLUS: { return act_sigmoid(z); }
    case ACT_SIGMOID: { return act_sigmoid(z) * act_sigmoid(-z); }
    case ACT_TANH: {
      // 1 - tanh^2 = 4 e / (1 + e)^2 with e = exp(-2|z|): no cancellation for large |z|.
      let e = exp(-2.0 * abs(z));
      return 4.0 * e / ((1.0 + e) * (1.0 + e));
    }
    case ACT_HARD_TANH: { return select(0.0, 1.0, abs(z) < 1.0); }
    case ACT_SIN: { return a * cos(a * z); }
    case ACT_COS: { return -a * sin(a * z); }
    case ACT_GAUSSIAN: { return -z * exp(-0.5 * z * z); }
    case ACT_ABS: { return select(select(0.0, -1.0, z < 0.0), 1.0, z > 0.0); }
    case ACT_INVERSE: { return -1.0; }
    case ACT_STEP: { return 0.0; }
    default: { return 1.0; }
  }
}
