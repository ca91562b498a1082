#!/usr/bin/env bash
# The real load benchmark on a GPU machine: vLLM serving Llama 3.1 8B Instruct, a concurrency
# sweep with `gateway bench run`, then `gateway bench calibrate` for the router.
# Everything is configurable through the environment; see README.md beside this file.
set -euo pipefail

MODEL=${MODEL:-meta-llama/Llama-3.1-8B-Instruct}
PORT=${PORT:-8000}
MAX_MODEL_LEN=${MAX_MODEL_LEN:-8192}          # the presets need ≤ 5,100 tokens; less KV per seq
GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.90}
MAX_NUM_SEQS=${MAX_NUM_SEQS:-256}
QUANTIZATION=${QUANTIZATION:-fp8}              # online FP8 (Hopper); "none" serves the BF16 weights
GPU_NAME=${GPU_NAME:-H100}
GPU_COUNT=${GPU_COUNT:-1}
GPU_HOURLY_USD=${GPU_HOURLY_USD:-2.49}
WORKLOAD=${WORKLOAD:-chat}                     # chat | classification | extraction | random …
SWEEP=${SWEEP:-concurrency=1,2,4,8,16,32,64,128,256}
DURATION=${DURATION:-60}                       # measured seconds per point
WARMUP=${WARMUP:-15}
SLO_TTFT_MS=${SLO_TTFT_MS:-500}
SLO_TPOT_MS=${SLO_TPOT_MS:-50}
PROVIDER=${PROVIDER:-local-llama}              # the provider name in the gateway's config
DB=${GATEWAY_DATABASE_URL:-sqlite+aiosqlite:///./gateway.db}
OUT=${OUT:-bench-results}
GATEWAY=${GATEWAY:-gateway}

# 1. vLLM. --enable-prefix-caching: the classification preset shares a 5,000-token system
#    prompt; --enable-prompt-tokens-details: usage then reports cached_tokens.
#    --quantization fp8: vLLM quantizes the BF16 weights to FP8 at load, no calibration data
#    (docs.vllm.ai, "FP8 W8A8", online dynamic quantization); the simulator's default H100
#    profile is calibrated on published FP8 figures (gateway/simulator/profiles.py).
QUANT_ARGS=()
if [ "$QUANTIZATION" != none ]; then QUANT_ARGS=(--quantization "$QUANTIZATION"); fi
vllm serve "$MODEL" --host 127.0.0.1 --port "$PORT" "${QUANT_ARGS[@]}" \
  --max-model-len "$MAX_MODEL_LEN" \
  --gpu-memory-utilization "$GPU_MEMORY_UTILIZATION" \
  --max-num-seqs "$MAX_NUM_SEQS" \
  --enable-prefix-caching \
  --enable-prompt-tokens-details \
  --tensor-parallel-size "$GPU_COUNT" \
  > vllm.log 2>&1 &
VLLM_PID=$!
trap 'kill "$VLLM_PID" 2>/dev/null || true; wait "$VLLM_PID" 2>/dev/null || true' EXIT

echo "waiting for vLLM on 127.0.0.1:$PORT (first start downloads ~16 GB of weights)…"
for _ in $(seq 1 1800); do
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; then break; fi
  if ! kill -0 "$VLLM_PID" 2>/dev/null; then echo "vLLM exited; see vllm.log" >&2; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null

# 2. The model's own tokenizer, so prompts have exactly the planned token counts.
TOKENIZER=$(python3 -c "from huggingface_hub import hf_hub_download as d; print(d('$MODEL', 'tokenizer.json'))" 2>/dev/null || echo auto)

# 3. The sweep.
"$GATEWAY" bench run --base-url "http://127.0.0.1:$PORT/v1" --model "$MODEL" \
  --workload "$WORKLOAD" --tokenizer "$TOKENIZER" --sweep "$SWEEP" \
  --duration "$DURATION" --warmup "$WARMUP" \
  --slo-ttft-ms "$SLO_TTFT_MS" --slo-tpot-ms "$SLO_TPOT_MS" \
  --gpu-name "$GPU_NAME" --gpu-count "$GPU_COUNT" --gpu-hourly-usd "$GPU_HOURLY_USD" \
  --database-url "$DB" --out "$OUT"

# 4. Calibration: the best point within the SLO becomes the provider's capacity.
RUN_ID=$("$GATEWAY" bench runs --limit 1 --database-url "$DB" | awk '{print $1}')
"$GATEWAY" bench calibrate "$RUN_ID" --provider "$PROVIDER" --database-url "$DB"
