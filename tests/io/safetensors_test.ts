import { FiligreeError } from "../../src/gpu/errors.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  type StTensor,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { freshSeed, Rng } from "../../src/testing/mod.ts";

function assert(cond: unknown, msg: string): void {
  if (!cond) throw new Error(msg);
}
function same(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}
function throwsOneLine(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof FiligreeError)) throw e;
    if (e.message.includes("\n") || !e.message.includes(includes)) {
      throw new Error(`bad message "${e.message}", want "${includes}"`);
    }
    return;
  }
  throw new Error(`expected a FiligreeError containing "${includes}"`);
}

function sampleTensors(rng: Rng): Record<string, StTensor> {
  const f32 = Float32Array.from(rng.normal(3 * 7));
  f32[0] = NaN;
  f32[1] = -0;
  f32[2] = Infinity;
  return {
    "layer0.weight": { dtype: "F32", shape: [3, 7], data: f32 },
    "layer0.bias": { dtype: "F32", shape: [7], data: Float32Array.from(rng.normal(7)) },
    "mask.idx": {
      dtype: "U32",
      shape: [5],
      data: Uint32Array.from([0, 1, 4294967295, 7, rng.int(1e9)]),
    },
    "delta": {
      dtype: "I32",
      shape: [2, 2],
      data: Int32Array.from([-2147483648, 2147483647, -1, rng.int(100)]),
    },
    "labels": { dtype: "U8", shape: [3], data: Uint8Array.from([0, 9, 255]) },
    "stats.mean": {
      dtype: "F64",
      shape: [2],
      data: Float64Array.from([Math.PI, rng.normal(1)[0]]),
    },
    "step": { dtype: "I64", shape: [], data: BigInt64Array.from([123456789012345n]) },
    "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
}

Deno.test("safetensors: round trip of every dtype, layout, alignment", () => {
  const rng = new Rng(freshSeed());
  const t = sampleTensors(rng);
  const bytes = encodeSafetensors(t, { format: "filigree", epoch: "3" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert((8 + n) % 8 === 0, "header padded to 8 bytes");
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert(
    headerText.startsWith("{") && /^[^ ]* *$/.test(headerText.replace(/"[^"]*"/g, "")),
    "spaces only as padding",
  );
  const f = decodeSafetensors(bytes, "t.safetensors");
  assert(f.metadata.format === "filigree" && f.metadata.epoch === "3", "metadata");
  assert(f.tensors.size === Object.keys(t).length, "tensor count");
  const header = JSON.parse(headerText);
  for (const [name, want] of Object.entries(t)) {
    const got = f.tensors.get(name)!;
    assert(
      got.dtype === want.dtype && got.shape.join() === want.shape.join(),
      `${name}: dtype/shape`,
    );
    assert(got.data.constructor === want.data.constructor, `${name}: array type`);
    assert(same(got.data, want.data), `${name}: values`);
    // Natural alignment of every tensor in the file.
    const [b] = header[name].data_offsets;
    assert((8 + n + b) % want.data.BYTES_PER_ELEMENT === 0, `${name}: aligned`);
  }
  // Little-endian: the U32 tensor's bytes.
  const [b] = header["mask.idx"].data_offsets;
  assert(same(bytes.subarray(8 + n + b, 8 + n + b + 4), [0, 0, 0, 0]), "u32 0");
  assert(same(bytes.subarray(8 + n + b + 4, 8 + n + b + 8), [1, 0, 0, 0]), "u32 1 little-endian");
  throwsOneLine(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [3], data: new Float32Array(2) } }),
    "needs 3 elements",
  );
  throwsOneLine(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Uint32Array(2) } }),
    "must be a Float32Array",
  );
});

/** A hand-made file: header JSON (padded), then `data` bytes. */
function craft(header: unknown, data: number[] | Uint8Array, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("safetensors: corrupt and truncated files give one-line errors", () => {
  const good = encodeSafetensors({
    a: { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
  });
  const name = "ckpt.safetensors";
  throwsOneLine(() => decodeSafetensors(good.subarray(0, 5), name), `${name}: truncated: 5 bytes`);
  throwsOneLine(() => decodeSafetensors(good.subarray(0, 20), name), "truncated: header length");
  throwsOneLine(() => decodeSafetensors(good.subarray(0, good.length - 1), name), "out of range");
  throwsOneLine(
    () => decodeSafetensors(craft({}, [], 1n << 40n), name),
    "bad header length 1099511627776",
  );
  throwsOneLine(() => decodeSafetensors(craft('{"a": ', []), name), "header is not valid JSON");
  throwsOneLine(() => decodeSafetensors(craft("[1, 2, 3]", []), name), "does not start with");
  const f4 = (b: number, e: number) => ({
    dtype: "F32",
    shape: [(e - b) / 4],
    data_offsets: [b, e],
  });
  const d16 = new Array(16).fill(0);
  throwsOneLine(
    () => decodeSafetensors(craft({ a: f4(0, 8), b: f4(4, 12) }, d16), name),
    'tensors "a" [0, 8] and "b" [4, 12] overlap',
  );
  throwsOneLine(
    () => decodeSafetensors(craft({ a: f4(0, 8), b: f4(12, 16) }, d16), name),
    "data bytes [8, 12) belong to no tensor",
  );
  throwsOneLine(
    () => decodeSafetensors(craft({ a: f4(0, 8) }, d16), name),
    "[8, 16) belong to no tensor",
  );
  throwsOneLine(
    () => decodeSafetensors(craft({ a: f4(0, 24) }, d16), name),
    "data_offsets [0, 24] out of range",
  );
  throwsOneLine(
    () =>
      decodeSafetensors(
        craft({ a: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, d16),
        name,
      ),
    "shape [3] F32 needs 12 bytes, data_offsets [0, 16] span 16",
  );
  throwsOneLine(
    () =>
      decodeSafetensors(
        craft({ a: { dtype: "Q4", shape: [4], data_offsets: [0, 16] } }, d16),
        name,
      ),
    'unknown dtype "Q4"',
  );
  throwsOneLine(
    () =>
      decodeSafetensors(
        craft({ a: { dtype: "U8", shape: [-1], data_offsets: [0, 16] } }, d16),
        name,
      ),
    "bad shape",
  );
  throwsOneLine(
    () =>
      decodeSafetensors(
        craft({ a: { dtype: "U8", shape: [16], data_offsets: [16, 0] } }, d16),
        name,
      ),
    "bad data_offsets",
  );
  throwsOneLine(
    () => decodeSafetensors(craft({ __metadata__: { x: 1 } }, []), name),
    '__metadata__ "x" is not a string',
  );
});

Deno.test("safetensors: invalid UTF-8 header", () => {
  const json = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20]);
  const out = new Uint8Array(16);
  new DataView(out.buffer).setBigUint64(0, 8n, true);
  out.set(json, 8);
  throwsOneLine(() => decodeSafetensors(out, "u.safetensors"), "not valid UTF-8");
});

const python = (() => {
  try {
    return Deno.permissions.querySync({ name: "run", command: "python3" }).state === "granted" &&
      new Deno.Command("python3", { args: ["-c", "import numpy"], stdout: "null", stderr: "null" })
        .outputSync().success;
  } catch {
    return false;
  }
})();

// Reads with the `safetensors` package when installed, else parses by hand with json + numpy;
// prints each tensor's numpy dtype, shape and little-endian bytes, and writes a file back by hand.
const PY = `
import json, struct, sys
import numpy as np
path, out = sys.argv[1], sys.argv[2]
DT = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4", "U32": "<u4", "U8": "u1"}
try:
    from safetensors.numpy import load_file
    tensors = load_file(path); reader = "safetensors"
    meta = json.loads(open(path, "rb").read()[8:8 + struct.unpack("<Q", open(path, "rb").read(8))[0]]).get("__metadata__", {})
except ImportError:
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        tensors[k] = np.frombuffer(data[b:e], dtype=DT[v["dtype"]]).reshape(v["shape"])
    reader = "numpy"
res = {"reader": reader, "meta": meta, "tensors": {}}
for k, a in tensors.items():
    le = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
    res["tensors"][k] = {"dtype": le.dtype.str, "shape": list(a.shape), "hex": le.tobytes().hex()}
print(json.dumps(res))
# Write a file by hand: f32 [2, 3] = arange, u32 [4], metadata.
w = np.arange(6, dtype="<f4").reshape(2, 3) / 4
u = np.array([1, 2, 3, 4000000000], dtype="<u4")
hdr = {"__metadata__": {"from": "python"}, "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
       "u": {"dtype": "U32", "shape": [4], "data_offsets": [24, 40]}}
hb = json.dumps(hdr).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
open(out, "wb").write(struct.pack("<Q", len(hb)) + hb + w.tobytes() + u.tobytes())
`;

Deno.test({
  name: "safetensors: python (safetensors or numpy + json) reads our files and we read its files",
  ignore: !python,
  async fn() {
    const rng = new Rng(freshSeed());
    const t = sampleTensors(rng);
    delete t.empty;
    const dir = await Deno.makeTempDir();
    try {
      await writeSafetensors(`${dir}/a.safetensors`, t, { run: "test" });
      const r = await new Deno.Command("python3", {
        args: ["-c", PY, `${dir}/a.safetensors`, `${dir}/b.safetensors`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!r.success) throw new Error(`python failed: ${new TextDecoder().decode(r.stderr)}`);
      const res = JSON.parse(new TextDecoder().decode(r.stdout));
      assert(res.meta.run === "test", "python sees the metadata");
      const npType: Record<string, string> = {
        F32: "<f4",
        F64: "<f8",
        U32: "<u4",
        I32: "<i4",
        I64: "<i8",
        U8: "|u1",
      };
      for (const [name, want] of Object.entries(t)) {
        const got = res.tensors[name];
        assert(
          got && got.shape.join() === want.shape.join(),
          `${name}: python shape ${got?.shape}`,
        );
        assert(
          got.dtype === npType[want.dtype],
          `${name}: python dtype ${got.dtype} for ${want.dtype}`,
        );
        const hex = Array.from(
          new Uint8Array(want.data.buffer, want.data.byteOffset, want.data.byteLength),
        )
          .map((b) => b.toString(16).padStart(2, "0")).join("");
        assert(got.hex === hex, `${name}: python sees other values (reader ${res.reader})`);
      }
      const back = await readSafetensors(`${dir}/b.safetensors`);
      assert(back.metadata.from === "python", "metadata from python");
      const w = back.tensors.get("w")!;
      assert(
        w.dtype === "F32" && w.shape.join() === "2,3" &&
          same(w.data, [0, 0.25, 0.5, 0.75, 1, 1.25]),
        "python f32",
      );
      assert(same(back.tensors.get("u")!.data, [1, 2, 3, 4000000000]), "python u32");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
