// Sparse topology updates on the GPU (SET, RigL, gradual magnitude pruning): the small kernels
// between the selection (select.wgsl), scan (scan.wgsl) and CSR sort (sort.wgsl) primitives.
// Nonzeros are indexed in CSR(Wᵀ) order ("values order"); dense positions as p = i * nOut + j.

struct Params {
  n_in: u32,
  n_out: u32,
  nnz: u32,       // current nonzeros (values order)
  dense_n: u32,   // n_in * n_out
  zeta: f32,      // SET drop fraction per sign
  seed: u32,      // RNG seed of this update
  step: u32,      // global step (stamped on grown weights)
  init_std: f32,  // std of regrown weights (0 = zero init)
  new_nnz: u32,   // nonzeros after the update
}

const NEW_ENTRY: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;

// ---- SET per-sign counts: k_pos = floor(zeta * #positive), k_neg = floor(zeta * #negative) ----
@group(0) @binding(1) var<storage, read> vals: array<f32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(256)
fn count_signs(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * 256u;
  if (k >= p.nnz) { return; }
  let v = vals[k];
  if (v > 0.0) { atomicAdd(&counts[0], 1u); } else if (v < 0.0) { atomicAdd(&counts[1], 1u); }
}

// kbuf: [k_pos, k_neg, k_pos + k_neg (grow count), kept count (written by the scan)]
@group(0) @binding(1) var<storage, read_write> kbuf: array<u32>;

@compute @workgroup_size(1)
fn set_k() {
  let kp = u32(floor(p.zeta * f32(kbuf[0])));
  let kn = u32(floor(p.zeta * f32(kbuf[1])));
  kbuf[0] = kp;
  kbuf[1] = kn;
  kbuf[2] = kp + kn;
}

// ---- output row of each nonzero; one invocation per output row (trip count <= n_in) ----
@group(0) @binding(1) var<storage, read> row_ptr_t: array<u32>;
@group(0) @binding(2) var<storage, read_write> row_of: array<u32>;

@compute @workgroup_size(64)
fn rows_of_entries(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.n_out) { return; }
  for (var k = row_ptr_t[j]; k < row_ptr_t[j + 1u]; k++) { row_of[k] = j; }
}

// ---- grow scores over all dense positions ----
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
fn uniform01(a: u32, b: u32) -> f32 {
  // 24 random bits -> (0, 1]
  return (f32(pcg(pcg(a) ^ b) >> 8u) + 1.0) / 16777216.0;
}

@group(0) @binding(1) var<storage, read_write> scores: array<f32>;

// SET: uniformly random empty positions = the top-D of i.i.d. uniform scores.
@compute @workgroup_size(256)
fn random_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * 256u;
  if (q >= p.dense_n) { return; }
  scores[q] = uniform01(q, p.seed);
}

@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_scores: array<f32>;

// RigL: grow where the dense gradient is largest in magnitude.
@compute @workgroup_size(256)
fn gradient_scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * 256u;
  if (q >= p.dense_n) { return; }
  grad_scores[q] = abs(grad[q]);
}

// Positions that stay occupied cannot be grown: score -1 (all real scores are >= 0).
@group(0) @binding(1) var<storage, read> col_t: array<u32>;
@group(0) @binding(2) var<storage, read> entry_row: array<u32>;
@group(0) @binding(3) var<storage, read> drop: array<u32>;
@group(0) @binding(4) var<storage, read_write> occupied_scores: array<f32>;

@compute @workgroup_size(256)
fn exclude_kept(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * 256u;
  if (k >= p.nnz) { return; }
  if (drop[k] == 0u) { occupied_scores[col_t[k] * p.n_out + entry_row[k]] = -1.0; }
}

// keep flag = 1 - drop
@group(0) @binding(1) var<storage, read> drop_in: array<u32>;
@group(0) @binding(2) var<storage, read_write> keep: array<u32>;

@compute @workgroup_size(256)
fn keep_flags(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * 256u;
  if (k >= p.nnz) { return; }
  keep[k] = 1u - min(drop_in[k], 1u);
}

// COO of the new topology: kept entries first (in values order), then grown ones (in p order).
@group(0) @binding(1) var<storage, read> kcol_t: array<u32>;
@group(0) @binding(2) var<storage, read> krow: array<u32>;
@group(0) @binding(3) var<storage, read> kdrop: array<u32>;
@group(0) @binding(4) var<storage, read> kpos: array<u32>;
@group(0) @binding(5) var<storage, read_write> coo_i: array<u32>;
@group(0) @binding(6) var<storage, read_write> coo_j: array<u32>;
@group(0) @binding(7) var<storage, read_write> coo_src: array<u32>;

@compute @workgroup_size(256)
fn scatter_kept(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * 256u;
  if (k >= p.nnz || kdrop[k] != 0u) { return; }
  let q = kpos[k];
  coo_i[q] = kcol_t[k];
  coo_j[q] = krow[k];
  coo_src[q] = k;
}

@group(0) @binding(1) var<storage, read> grow: array<u32>;
@group(0) @binding(2) var<storage, read> gpos: array<u32>;
@group(0) @binding(3) var<storage, read> kcount: array<u32>; // kbuf; [3] = kept count
@group(0) @binding(4) var<storage, read_write> gcoo_i: array<u32>;
@group(0) @binding(5) var<storage, read_write> gcoo_j: array<u32>;
@group(0) @binding(6) var<storage, read_write> gcoo_src: array<u32>;

@compute @workgroup_size(256)
fn scatter_grown(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * 256u;
  if (q >= p.dense_n || grow[q] == 0u) { return; }
  let at = kcount[3] + gpos[q];
  if (at >= p.new_nnz) { return; } // never happens when the counts agree; guards the buffers
  gcoo_i[at] = q / p.n_out;
  gcoo_j[at] = q % p.n_out;
  gcoo_src[at] = NEW_ENTRY;
}

// After the sort into CSR(Wᵀ): from[t] = source of slot t (old index or NEW_ENTRY),
// inv[coo index] = t (the payload that gives CSR(W) its permutation into the values).
@group(0) @binding(1) var<storage, read> perm_t: array<u32>;
@group(0) @binding(2) var<storage, read> src_of: array<u32>;
@group(0) @binding(3) var<storage, read_write> from_t: array<u32>;
@group(0) @binding(4) var<storage, read_write> inv_t: array<u32>;

@compute @workgroup_size(256)
fn sources(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= p.new_nnz) { return; }
  let c = perm_t[t];
  from_t[t] = src_of[c];
  inv_t[c] = t;
}

// New value arrays: kept weights move, grown ones start at N(0, init_std²) (or 0) and are
// stamped with the step they were grown at.
@group(0) @binding(1) var<storage, read> from_v: array<u32>;
@group(0) @binding(2) var<storage, read> old_vals: array<f32>;
@group(0) @binding(3) var<storage, read> old_born: array<u32>;
@group(0) @binding(4) var<storage, read_write> new_vals: array<f32>;
@group(0) @binding(5) var<storage, read_write> new_born: array<u32>;

@compute @workgroup_size(256)
fn gather_values(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= p.new_nnz) { return; }
  let f = from_v[t];
  if (f == NEW_ENTRY) {
    var v = 0.0;
    if (p.init_std > 0.0) {
      let u1 = uniform01(t * 2u + 1u, p.seed ^ 0x9e3779b9u);
      let u2 = uniform01(t * 2u + 2u, p.seed ^ 0x85ebca6bu);
      v = p.init_std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    }
    new_vals[t] = v;
    new_born[t] = p.step;
  } else {
    new_vals[t] = old_vals[f];
    new_born[t] = old_born[f];
  }
}
