"""Writes a random LoRA for a full-size SD 1.5 UNet in the diffusers/peft layout (unet.<module>.lora_A/lora_B.weight,
no alpha: scaling 1), shaped like LCM-LoRA SD 1.5: rank R on every attention projection, proj_in/proj_out, the
feed-forwards, time_emb_proj and the resnets' conv1/conv2. Values are small pseudo-random F16 (speed and memory
measurements only). Usage: random_lora.py MANIFEST.json OUT.safetensors [RANK]"""
import json, random, struct, sys

manifest, out = sys.argv[1], sys.argv[2]
rank = int(sys.argv[3]) if len(sys.argv) > 3 else 64
suffixes = ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "proj_in.weight", "proj_out.weight",
            "ff.net.0.proj.weight", "ff.net.2.weight", "time_emb_proj.weight", "conv1.weight", "conv2.weight")
keys = [e for e in json.load(open(manifest))["keys"] if e["key"].endswith(suffixes) and len(e["shape"]) in (2, 4)]
random.seed(0)
pool = b"".join(struct.pack("<e", random.gauss(0, 0.01)) for _ in range(1 << 16))
header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
for e in keys:
    shape, name = e["shape"], "unet." + e["key"][: -len(".weight")]
    kernel = shape[2:] if len(shape) == 4 else []
    for part, s in (("lora_A", [rank, shape[1], *kernel]), ("lora_B", [shape[0], rank, *([1, 1] if kernel else [])])):
        n = 1
        for d in s: n *= d
        data = (pool * (2 * n // len(pool) + 1))[: 2 * n]
        header[f"{name}.{part}.weight"] = {"dtype": "F16", "shape": s, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
head = json.dumps(header).encode()
head += b" " * (-len(head) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(head)) + head)
    for c in chunks: f.write(c)
print(f"{len(keys)} modules, {offset // 2} parameters, {offset / 2**20:.1f} MiB")
