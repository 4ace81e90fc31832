/**
 * NSGA-II ranking (Deb et al. 2002), every objective maximised: non-dominated fronts, then
 * crowding distance within a front (larger first, boundary points infinite). NaN counts as
 * -Infinity. Ties keep the input order, so the ranking is deterministic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nsgaRank, paretoFronts } from "./nsga2.ts";
 * const objs = [[1, 1], [2, 0], [0, 0], [0.5, 0.5]];
 * assert.deepEqual(paretoFronts(objs), [[0, 1], [3], [2]]);
 * assert.deepEqual(nsgaRank(objs), [0, 1, 3, 2]);
 * ```
 * @module
 */

const val = (v: number) => (Number.isNaN(v) ? -Infinity : v);

/** True when `a` is at least as good as `b` everywhere and better somewhere. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let k = 0; k < a.length; k++) {
    const x = val(a[k]), y = val(b[k]);
    if (x < y) return false;
    if (x > y) better = true;
  }
  return better;
}

/** Indices grouped into non-dominated fronts, best front first, each in input order. */
export function paretoFronts(objs: readonly (readonly number[])[]): number[][] {
  const n = objs.length;
  const dominatedBy = new Int32Array(n);
  const dominating: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (dominates(objs[i], objs[j])) {
        dominating[i].push(j);
        dominatedBy[j]++;
      } else if (dominates(objs[j], objs[i])) {
        dominating[j].push(i);
        dominatedBy[i]++;
      }
    }
  }
  const fronts: number[][] = [];
  let cur = [];
  for (let i = 0; i < n; i++) if (dominatedBy[i] === 0) cur.push(i);
  while (cur.length) {
    fronts.push(cur);
    const next: number[] = [];
    for (const i of cur) {
      for (const j of dominating[i]) if (--dominatedBy[j] === 0) next.push(j);
    }
    cur = next.sort((a, b) => a - b);
  }
  return fronts;
}

/** Crowding distance of each member of `front` (same order as `front`). */
export function crowdingDistance(
  objs: readonly (readonly number[])[],
  front: readonly number[],
): Float64Array {
  const d = new Float64Array(front.length);
  if (!front.length) return d;
  const m = objs[front[0]].length;
  for (let k = 0; k < m; k++) {
    const idx = front.map((_, i) => i).sort((a, b) =>
      val(objs[front[a]][k]) - val(objs[front[b]][k]) || a - b
    );
    const lo = val(objs[front[idx[0]]][k]), hi = val(objs[front[idx[idx.length - 1]]][k]);
    d[idx[0]] = d[idx[idx.length - 1]] = Infinity;
    const span = hi - lo;
    if (!(span > 0) || !Number.isFinite(span)) continue;
    for (let t = 1; t < idx.length - 1; t++) {
      d[idx[t]] += (val(objs[front[idx[t + 1]]][k]) - val(objs[front[idx[t - 1]]][k])) / span;
    }
  }
  return d;
}

/** Indices from best to worst: by front, then by crowding distance (larger first), then index. */
export function nsgaRank(objs: readonly (readonly number[])[]): number[] {
  const order: number[] = [];
  for (const f of paretoFronts(objs)) {
    const d = crowdingDistance(objs, f);
    const idx = f.map((_, i) => i).sort((a, b) => (d[b] - d[a]) || (f[a] - f[b]));
    for (const i of idx) order.push(f[i]);
  }
  return order;
}
