#!/usr/bin/env bash
# End-to-end generation on CUDA: diffusers reference reproduction and CUDA vs CPU agreement.
set -u
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/dn /tmp/cli
tar -xJf "$here/dotnet.tar.xz" -C /tmp/dn & tar -xJf "$here/cli.tar.xz" -C /tmp/cli & wait
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 ENGINE_MODELS=$PWD/models
E="dotnet /tmp/cli/engine.dll"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
timeout 60 $E info | tee "$OUT/info.txt"
python3 - "$here" <<'PY'
import json,struct,sys,os
here=sys.argv[1]
def read(path,name):
    f=open(path,'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n)); e=h[name]
    f.seek(8+n+e['data_offsets'][0]); import array; a=array.array('f'); a.frombytes(f.read(e['data_offsets'][1]-e['data_offsets'][0])); return a,e['shape']
def write(path,name,arr,shape):
    import array
    hdr=json.dumps({name:{"dtype":"F32","shape":shape,"data_offsets":[0,len(arr)*4]}}).encode(); hdr+=b' '*((8-len(hdr)%8)%8)
    open(path,'wb').write(struct.pack('<Q',len(hdr))+hdr+arr.tobytes())
for m in ['fmnist-unet','fmnist-dit']:
    x,s=read(f'{here}/ref/{m}/reference.safetensors','x_T'); write(f'{here}/ref/{m}/x_T.safetensors','x_T',x,s)
PY
for m in fmnist-unet fmnist-dit; do for k in ddim50_cfg3 dpmpp2m20_cfg3; do
  for dev in cuda cpu; do
    /usr/bin/time -f "%e s" -o "$OUT/t_${m}_${k}_$dev.txt" timeout 120 $E generate --model $m --device $dev --scheduler-config "$here/ref/$m/$k.json" --steps $(cat "$here/ref/$m/$k.steps") --cfg 3 --classes 0,1,2,3,4,5,6,7 --seed 0 --count 8 --init-noise "$here/ref/$m/x_T.safetensors" --output-tensor "$OUT/${m}_${k}_$dev.safetensors" --out "$OUT/img_${m}_${k}_$dev" > "$OUT/gen_${m}_${k}_$dev.log" 2>&1
    echo "$m $k $dev rc=$? $(cat $OUT/t_${m}_${k}_$dev.txt)"
  done
done; done
timeout 120 $E generate --device cuda --count 64 --out "$OUT/grid64" --output-tensor "$OUT/grid64_cuda.safetensors" > "$OUT/gen64_cuda.log" 2>&1; echo "64 cuda rc=$?"; tail -1 "$OUT/gen64_cuda.log"
timeout 120 $E generate --device cpu --count 64 --out "$OUT/grid64cpu" --output-tensor "$OUT/grid64_cpu.safetensors" > "$OUT/gen64_cpu.log" 2>&1; echo "64 cpu rc=$?"; tail -1 "$OUT/gen64_cpu.log"
python3 - "$here" "$OUT" <<'PY'
import json,struct,sys,array
here,out=sys.argv[1],sys.argv[2]
def read(path,name):
    f=open(path,'rb'); n=struct.unpack('<Q',f.read(8))[0]; h=json.loads(f.read(n)); e=h[name]
    f.seek(8+n+e['data_offsets'][0]); a=array.array('f'); a.frombytes(f.read(e['data_offsets'][1]-e['data_offsets'][0])); return a
def rel(a,b): return max(abs(x-y) for x,y in zip(a,b))/max(abs(y) for y in b)
for m in ['fmnist-unet','fmnist-dit']:
    for k in ['ddim50_cfg3','dpmpp2m20_cfg3']:
        ref=read(f'{here}/ref/{m}/reference.safetensors',k)
        for dev in ['cuda','cpu']:
            try: print(f'{m} {k} {dev}: max|err|/max|ref| vs diffusers = {rel(read(f"{out}/{m}_{k}_{dev}.safetensors","samples"),ref):.3e}')
            except Exception as e: print(m,k,dev,'missing',e)
try: print(f'64 default images, cuda vs cpu: max|diff|/max = {rel(read(out+"/grid64_cuda.safetensors","samples"),read(out+"/grid64_cpu.safetensors","samples")):.3e}')
except Exception as e: print('64 compare failed',e)
PY
cp "$OUT/grid64/grid.png" "$OUT/grid64_cuda.png" 2>/dev/null; rm -rf "$OUT"/img_* "$OUT/grid64" "$OUT/grid64cpu"
