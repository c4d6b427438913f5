"""Simulated inference servers (vLLM, TGI, SGLang, Triton + TRT-LLM, llama.cpp).

A `SimEngine` turns a load curve into the cumulative counters, gauges and histograms an engine
exposes, as a deterministic function of wall-clock time, and renders them in that engine's exact
wire format at real size (a vLLM V1 payload is tens of kB with hundreds of histogram lines).
Tests, the demo and the benchmarks scrape it over HTTP like a real pod (`make_app`).

Time model (a fluid queue on a fixed grid, `dt` seconds):
- `load(t)` is the arrival rate in requests/s, `t` seconds after the engine started (or, with
  `load_unit="tokens"`, the generation tokens/s those requests ask for).
- With `capacity_tokens_per_second`, at most capacity/output_tokens requests start per second;
  the rest queue (`waiting` grows, TTFT grows, tokens/s flattens: saturation).  Without it,
  every request starts on arrival.
- A request lasts D = ttft + output_tokens / decode_tokens_per_second.  Gauges follow from it:
  running = requests started in the last D seconds, KV usage = running x tokens held / KV size.
- Token counters: vLLM, llama.cpp and SGLang's per-iteration `realtime_tokens_total` count
  tokens as they are generated (smooth); TGI and Triton's TRT-LLM histograms count a request's
  tokens when it finishes (bursty), with per-request sizes drawn from a seeded RNG.
- About 1 % of finished requests end without a result (abort/error): `requests_at` counts the
  others, `failed_requests_at` those.
- Shapes are the engines' current releases (see tests/fixtures/engines/ for the upstream files):
  vLLM finish reasons incl. repetition/error and waiting by reason; SGLang with every scheduler
  rank publishing and priority totals; llama.cpp with prompt tokens split into computed and
  cached.

Ground truth for tests: `expected_generation_rate(t0, t1)` (and prompt/request variants) is
the exact rate a perfect scraper of this engine sees between two absolute times, and
`generation_tokens_at(t)` is the counter on the wire at time t (after `restart()`, counted
again from zero).
"""

from __future__ import annotations

import math
import random
import time
from array import array
from bisect import bisect_left, bisect_right
from typing import Callable

Load = Callable[[float], float]

KINDS = ("vllm", "tgi", "sglang", "triton", "llamacpp", "trtllm")
_BURSTY = {"tgi", "triton", "trtllm"}

# Bucket boundaries as the engines define them.
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
VLLM_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
VLLM_ITERATION_TOKENS_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
SGLANG_TTFT_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0,
    200.0, 400.0,
)  # fmt: skip
SGLANG_ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08,
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0,
)  # fmt: skip
SGLANG_E2E_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0,
    200.0, 400.0, 600.0, 1200.0, 1800.0, 2400.0,
)  # fmt: skip
# TGI (Rust `metrics` exporter): duration buckets 1e-4 * 1.5^k, 35 of them.
TGI_DURATION_BUCKETS = tuple(0.0001 * 1.5**k for k in range(1, 36))
TRITON_TOKEN_BUCKETS = (10.0, 50.0, 100.0, 500.0, 1000.0)


def _one_two_five(limit: int) -> tuple[float, ...]:
    """vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to `limit`."""
    out, mantissa, exponent = [], (1, 2, 5), 0
    while True:
        for m in mantissa:
            v = m * 10**exponent
            if v > limit:
                return tuple(float(x) for x in out)
            out.append(v)
        exponent += 1


# ----------------------------------------------------------------------------- load curves


def constant(rps: float) -> Load:
    return lambda t: rps


def step(before: float, after: float, at: float) -> Load:
    """`before` requests/s until `at` seconds, then `after`."""
    return lambda t: before if t < at else after


def sine(mean: float, amplitude: float, period: float) -> Load:
    return lambda t: max(0.0, mean + amplitude * math.sin(2 * math.pi * t / period))


_SQRT2 = math.sqrt(2.0)


class _Hist:
    """A cumulative histogram fed in bulk with a log-normal shape: `n` observations with
    median `median`.  Bucket counts are kept as floats and floored when rendered, so they stay
    monotone over time and across `le`."""

    __slots__ = ("bounds", "log_bounds", "cum", "total", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.log_bounds = [math.log(b) if b > 0 else -math.inf for b in bounds]
        self.reset()

    def reset(self) -> None:
        self.cum = [0.0] * len(self.bounds)
        self.total = 0.0
        self.sum = 0.0

    def observe(self, n: float, median: float, sigma: float) -> None:
        if n <= 0:
            return
        ln_m = math.log(max(median, 1e-9))
        k = 1.0 / (sigma * _SQRT2)
        cum, lbs = self.cum, self.log_bounds
        # Beyond 8 sigma the CDF is 0 or 1 to double precision: only the buckets in between
        # need erfc (TGI's batch-size histogram has 1,024 buckets).
        lo = bisect_left(lbs, ln_m - 8 * sigma)
        hi = bisect_right(lbs, ln_m + 8 * sigma)
        for j in range(lo, hi):
            cum[j] += n * 0.5 * math.erfc(-(lbs[j] - ln_m) * k)
        for j in range(hi, len(cum)):
            cum[j] += n
        self.total += n
        self.sum += n * median * math.exp(sigma * sigma / 2)

    def counts(self) -> list[int]:
        """Cumulative integer counts per bound, then +Inf."""
        return [int(c) for c in self.cum] + [int(self.total)]


# ---------------------------------------------------------------------------------- engine


class SimEngine:
    """One simulated inference server.  See the module docstring for the model."""

    def __init__(
        self,
        kind: str = "vllm",
        model: str = "meta-llama/Llama-3.1-8B-Instruct",
        load: Load | float = 2.0,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        prompt_tokens: int = 512,
        output_tokens: int = 256,
        ttft: float = 0.08,
        decode_tokens_per_second: float = 40.0,
        capacity_tokens_per_second: float | None = None,
        kv_capacity_tokens: float | None = None,
        ranks: int = 1,
        max_model_len: int = 8192,
        dt: float = 0.1,
        cache_seconds: float = 0.0,
        history_seconds: float = 3600.0,
        load_unit: str = "requests",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown engine kind {kind!r}; one of {', '.join(KINDS)}")
        if load_unit not in ("requests", "tokens"):
            raise ValueError("load_unit is 'requests' (per second) or 'tokens' (generated per second)")
        self.kind = kind
        self.model = model
        curve: Load = constant(float(load)) if isinstance(load, (int, float)) else load
        if load_unit == "tokens":
            tokens_curve = curve
            curve = lambda t: tokens_curve(t) / output_tokens  # noqa: E731
        self.load = curve
        self.seed = seed
        self.clock = clock
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.ttft = ttft
        self.decode_tokens_per_second = decode_tokens_per_second
        self.capacity_tokens_per_second = capacity_tokens_per_second
        # Data-parallel engine index (vLLM `engine`), tensor-parallel rank (SGLang `tp_rank`).
        self.ranks = max(1, int(ranks))
        self.max_model_len = max_model_len
        self.dt = dt
        self.bursty = kind in _BURSTY
        self.duration = ttft + output_tokens / decode_tokens_per_second
        self._cap_rps = (
            capacity_tokens_per_second / output_tokens if capacity_tokens_per_second else None
        )
        if kv_capacity_tokens is None:
            held = prompt_tokens + output_tokens / 2
            kv_capacity_tokens = (
                self._cap_rps * self.duration * held / 0.95 if self._cap_rps else 200_000.0
            )
        self.kv_capacity_tokens = kv_capacity_tokens
        # Serve the same bytes for this long (large simulated fleets: rendering costs ~1-2 ms).
        self.cache_seconds = cache_seconds
        self._rendered: tuple[float, bytes] | None = None
        # HTTP behaviour, for scrape-failure tests.
        self.status = 200
        self.delay = 0.0

        self.started_at = clock()
        self._created = self.started_at
        self._rng = random.Random(seed)
        # Grid: cumulative started requests, queue length, cumulative (started x wait).
        self._S = array("d", [0.0])
        self._Q = array("d", [0.0])
        self._W = array("d", [0.0])
        # Bursty engines: cumulative tokens of the first i requests (index i).
        self._cum_out = array("d", [0.0])
        self._cum_prompt = array("d", [0.0])
        # Only `history_seconds` of the past is kept (a demo runs for days): grid index and
        # request index of the first kept element.
        self._keep_steps = max(16, int(history_seconds / dt))
        self._k0 = 0
        self._n0 = 0
        self._raw = {
            "gen": self._gen_raw,
            "prompt": self._prompt_raw,
            "req": self._req_raw,
            "failed": self._failed_raw,
        }
        # (time, raw counter values then): visible counters count from zero after each.
        self._restarts: list[tuple[float, dict[str, float]]] = []
        self._started_at_restart = 0
        self._hist_at = self.started_at
        self._hists = self._make_hists()

    # ---------------------------------------------------------------- fluid queue on the grid

    def _extend(self, k: int) -> None:
        """Compute the grid up to absolute grid index k."""
        S, Q, W, dt, cap = self._S, self._Q, self._W, self.dt, self._cap_rps
        while len(S) + self._k0 <= k:
            i = len(S) + self._k0
            arrivals = max(0.0, float(self.load((i - 0.5) * dt))) * dt
            q = Q[-1] + arrivals
            served = min(q, cap * dt) if cap else q
            q -= served
            S.append(S[-1] + served)
            Q.append(q)
            W.append(W[-1] + served * (q / cap if cap else 0.0))
            if len(S) > 2 * self._keep_steps:
                self._trim()

    def _trim(self) -> None:
        drop = len(self._S) - self._keep_steps
        # Histograms are advanced from the last render: keep what that still needs.
        needed = int((self._hist_at - self.duration - self.started_at) / self.dt) - 1
        drop = min(drop, needed - self._k0)
        if drop <= 0:
            return
        for arr in (self._S, self._Q, self._W):
            del arr[:drop]
        self._k0 += drop
        # Requests that finished before the oldest kept grid point are never looked up again.
        n_drop = int(self._S[0]) - 1 - self._n0
        if n_drop > 0 and n_drop < len(self._cum_out):
            del self._cum_out[:n_drop]
            del self._cum_prompt[:n_drop]
            self._n0 += n_drop

    def _at(self, arr: array, t: float) -> float:
        e = t - self.started_at
        if e <= 0:
            return 0.0
        x = e / self.dt
        k = int(x)
        self._extend(k + 1)
        i = k - self._k0
        if i < 0:
            raise ValueError(f"t={t} is older than the simulator keeps (history_seconds)")
        return arr[i] + (arr[i + 1] - arr[i]) * (x - k)

    def started(self, t: float) -> float:
        """Requests started (admitted to the batch) by absolute time t (fluid, fractional)."""
        return self._at(self._S, t)

    def queue(self, t: float) -> float:
        return self._at(self._Q, t)

    def _tokens(self, n: int) -> tuple[float, float]:
        """(output, prompt) tokens of the first n requests, per-request sizes seeded."""
        co, cp, rng = self._cum_out, self._cum_prompt, self._rng
        o, p = self.output_tokens, self.prompt_tokens
        i = n - self._n0
        if i < 0:
            raise ValueError("request index older than the simulator keeps (history_seconds)")
        while len(co) <= i:
            co.append(co[-1] + max(1, round(o * rng.uniform(0.5, 1.5))))
            cp.append(cp[-1] + max(1, round(p * rng.uniform(0.5, 1.5))))
        return co[i], cp[i]

    # ------------------------------------------------------------------------- raw counters

    def _finished(self, t: float) -> int:
        return int(self.started(t - self.duration) + 1e-9)

    def _gen_raw(self, t: float) -> float:
        if self.bursty:
            return self._tokens(self._finished(t))[0]
        # Tokens stream out over the request: count them half a request late on average.
        lag = self.ttft + (self.duration - self.ttft) / 2
        return float(math.floor(self.output_tokens * self.started(t - lag) + 1e-9))

    def _prompt_raw(self, t: float) -> float:
        if self.kind == "tgi":  # TGI records the input length when the request is validated
            n = int(self.started(t) + 1e-9)
        elif self.bursty:
            n = self._finished(t)
        else:
            return float(math.floor(self.prompt_tokens * self.started(t - self.ttft) + 1e-9))
        return self._tokens(n)[1]

    def _failed_raw(self, t: float) -> float:
        return float(self._finished(t) // 100)

    def _req_raw(self, t: float) -> float:
        return float(self._finished(t)) - self._failed_raw(t)

    def _wire(self, v: float, key: str = "") -> float:
        # llama.cpp prints counters with 6 significant digits: the wire value steps.  Its prompt
        # tokens are two counters (computed + cached), each rounded on the wire.
        if self.kind != "llamacpp":
            return v
        if key == "prompt":
            computed, cached = llamacpp_prompt_split(v)
            return float(f"{computed:g}") + float(f"{cached:g}")
        return float(f"{v:g}")

    def _base(self, key: str, t: float) -> float:
        base = 0.0
        for at, bases in self._restarts:
            if t >= at:
                base = bases[key]
        return base

    def _visible(self, key: str, t: float) -> float:
        return self._wire(self._raw[key](t) - self._base(key, t), key)

    def _expected(self, key: str, t0: float, t1: float) -> float:
        """Counted increase between t0 and t1 as reset-aware counter handling sees it: within
        a segment, the difference; across a restart, what was counted before it plus the
        value after it."""
        raw = self._raw[key]
        base = self._base(key, t0)
        total = -self._wire(raw(t0) - base, key)
        for at, bases in self._restarts:
            if t0 < at <= t1:
                total += self._wire(raw(at) - base, key)  # last value before the restart
                base = bases[key]
        total += self._wire(raw(t1) - base, key)
        return total / (t1 - t0)

    def generation_tokens_at(self, t: float) -> float:
        """The generation-token counter on the wire at absolute time t."""
        return self._visible("gen", t)

    def prompt_tokens_at(self, t: float) -> float:
        return self._visible("prompt", t)

    def requests_at(self, t: float) -> float:
        """Requests finished with a result (stop, length, repetition)."""
        return self._visible("req", t)

    def failed_requests_at(self, t: float) -> float:
        """Requests finished without a result (abort, error)."""
        return self._visible("failed", t)

    def expected_generation_rate(self, t0: float, t1: float) -> float:
        """Generation tokens/s counted between absolute times t0 < t1: what an exporter that
        scrapes at exactly t0 and t1 must report."""
        return self._expected("gen", t0, t1)

    def expected_prompt_rate(self, t0: float, t1: float) -> float:
        return self._expected("prompt", t0, t1)

    def expected_request_rate(self, t0: float, t1: float) -> float:
        return self._expected("req", t0, t1)

    def expected_failed_rate(self, t0: float, t1: float) -> float:
        return self._expected("failed", t0, t1)

    def work_rate(self, t0: float, t1: float) -> float:
        """Tokens/s actually being generated (not when they are counted): for bursty engines the
        rate the counters converge to over windows much longer than a request."""
        return self.output_tokens * (self.started(t1) - self.started(t0)) / (t1 - t0)

    # ------------------------------------------------------------------------------- gauges

    def running(self, t: float) -> float:
        return max(0.0, self.started(t) - self.started(t - self.duration))

    def waiting(self, t: float) -> float:
        return self.queue(t)

    def kv_cache_usage(self, t: float) -> float:
        held = self.prompt_tokens + self.output_tokens / 2
        return min(1.0, self.running(t) * held / self.kv_capacity_tokens)

    def queue_wait(self, t0: float, t1: float) -> float:
        """Mean time in queue of the requests started between t0 and t1."""
        ds = self.started(t1) - self.started(t0)
        return (self._at(self._W, t1) - self._at(self._W, t0)) / ds if ds > 1e-9 else 0.0

    def ttft_median(self, t0: float, t1: float) -> float:
        """Median TTFT of requests started between t0 and t1 (the TTFT histogram's shape)."""
        return self.ttft + self.queue_wait(t0, t1)

    # ------------------------------------------------------------------------- lifecycle

    def restart(self) -> None:
        """The server restarts now: every counter and histogram starts again from zero."""
        now = self.clock()
        self._advance_hists(now)
        self._restarts.append((now, {k: raw(now) for k, raw in self._raw.items()}))
        self._started_at_restart = int(self.started(now) + 1e-9)
        self._created = now
        self._rendered = None
        for h in self._hists.values():
            h.reset()

    # ------------------------------------------------------------------------- histograms

    def _make_hists(self) -> dict[str, _Hist]:
        k = self.kind
        if k == "vllm":
            tok = _one_two_five(self.max_model_len)
            return {
                "iteration_tokens_total": _Hist(VLLM_ITERATION_TOKENS_BUCKETS),
                "request_prompt_tokens": _Hist(tok),
                "request_generation_tokens": _Hist(tok),
                "request_max_num_generation_tokens": _Hist(tok),
                "request_params_n": _Hist((1.0, 2.0, 5.0, 10.0, 20.0)),
                "request_params_max_tokens": _Hist(tok),
                "time_to_first_token_seconds": _Hist(VLLM_TTFT_BUCKETS),
                "inter_token_latency_seconds": _Hist(VLLM_ITL_BUCKETS),
                "request_time_per_output_token_seconds": _Hist(VLLM_ITL_BUCKETS),
                "e2e_request_latency_seconds": _Hist(VLLM_LATENCY_BUCKETS),
                "request_queue_time_seconds": _Hist(VLLM_LATENCY_BUCKETS),
                "request_inference_time_seconds": _Hist(VLLM_LATENCY_BUCKETS),
                "request_prefill_time_seconds": _Hist(VLLM_LATENCY_BUCKETS),
                "request_decode_time_seconds": _Hist(VLLM_LATENCY_BUCKETS),
            }
        if k == "tgi":
            new_tok = tuple(512 / 100 * i for i in range(1, 101))
            in_tok = tuple(511 / 100 * i for i in range(1, 101))
            d = TGI_DURATION_BUCKETS
            return {
                "tgi_request_duration": _Hist(d),
                "tgi_request_validation_duration": _Hist(d),
                "tgi_request_queue_duration": _Hist(d),
                "tgi_request_inference_duration": _Hist(d),
                "tgi_request_mean_time_per_token_duration": _Hist(d),
                "tgi_request_input_length": _Hist(in_tok),
                "tgi_request_generated_tokens": _Hist(new_tok),
                "tgi_request_max_new_tokens": _Hist(new_tok),
                "tgi_batch_forward_duration:prefill": _Hist(d),
                "tgi_batch_forward_duration:decode": _Hist(d),
                "tgi_batch_inference_duration:prefill": _Hist(d),
                "tgi_batch_inference_duration:decode": _Hist(d),
                "tgi_batch_decode_duration:prefill": _Hist(d),
                "tgi_batch_decode_duration:decode": _Hist(d),
                "tgi_batch_filter_duration:prefill": _Hist(d),
                "tgi_batch_filter_duration:decode": _Hist(d),
                "tgi_batch_concat_duration:decode": _Hist(d),
                "tgi_batch_next_size": _Hist(tuple(float(i) for i in range(1, 1025))),
            }
        if k == "sglang":
            return {
                "time_to_first_token_seconds": _Hist(SGLANG_TTFT_BUCKETS),
                "inter_token_latency_seconds": _Hist(SGLANG_ITL_BUCKETS),
                "e2e_request_latency_seconds": _Hist(SGLANG_E2E_BUCKETS),
                "queue_time_seconds": _Hist(SGLANG_E2E_BUCKETS),
            }
        if k == "trtllm":
            return {
                "time_to_first_token_seconds": _Hist(VLLM_TTFT_BUCKETS),
                "request_queue_time_seconds": _Hist(VLLM_LATENCY_BUCKETS),
                "e2e_request_latency_seconds": _Hist(VLLM_LATENCY_BUCKETS),
            }
        if k == "triton":
            return {
                "nv_llm_input_token_len": _Hist(TRITON_TOKEN_BUCKETS),
                "nv_llm_output_token_len": _Hist(TRITON_TOKEN_BUCKETS),
            }
        return {}

    def _advance_hists(self, now: float) -> None:
        t0 = self._hist_at
        if now <= t0:
            return
        # Grid points since t0 - duration must survive trimming while this runs: move
        # _hist_at only once they have been read.
        started_t0 = self.started(t0 - self.duration), self.started(t0), self._at(self._W, t0)
        started = self.started(now) - started_t0[1]
        finished = self.started(now - self.duration) - started_t0[0]
        wait = (self._at(self._W, now) - started_t0[2]) / started if started > 1e-9 else 0.0
        self._hist_at = now
        tpot = 1.0 / self.decode_tokens_per_second
        h = self._hists
        if self.kind == "vllm":
            e2e = self.duration + wait
            h["time_to_first_token_seconds"].observe(started, self.ttft + wait, 0.45)
            h["request_queue_time_seconds"].observe(finished, max(wait, 0.01), 0.8)
            h["inter_token_latency_seconds"].observe(finished * self.output_tokens, tpot, 0.25)
            h["request_time_per_output_token_seconds"].observe(finished, tpot, 0.15)
            h["e2e_request_latency_seconds"].observe(finished, e2e, 0.35)
            h["request_inference_time_seconds"].observe(finished, self.duration, 0.35)
            h["request_prefill_time_seconds"].observe(finished, self.ttft, 0.4)
            h["request_decode_time_seconds"].observe(finished, self.duration - self.ttft, 0.35)
            h["request_prompt_tokens"].observe(finished, self.prompt_tokens, 0.6)
            h["request_generation_tokens"].observe(finished, self.output_tokens, 0.6)
            h["request_max_num_generation_tokens"].observe(finished, self.output_tokens, 0.6)
            h["request_params_max_tokens"].observe(finished, self.output_tokens * 2, 0.3)
            h["request_params_n"].observe(finished, 1.0, 0.05)
            steps = (now - t0) * self.decode_tokens_per_second
            h["iteration_tokens_total"].observe(steps, max(1.0, self.running(now)), 0.5)
        elif self.kind == "tgi":
            e2e = self.duration + wait
            h["tgi_request_duration"].observe(finished, e2e, 0.35)
            h["tgi_request_validation_duration"].observe(started, 0.0004, 0.3)
            h["tgi_request_queue_duration"].observe(started, max(wait, 0.0002), 0.8)
            h["tgi_request_inference_duration"].observe(finished, self.duration, 0.35)
            h["tgi_request_mean_time_per_token_duration"].observe(finished, tpot, 0.15)
            h["tgi_request_input_length"].observe(started, self.prompt_tokens * 0.4, 0.5)
            h["tgi_request_generated_tokens"].observe(finished, self.output_tokens * 0.4, 0.5)
            h["tgi_request_max_new_tokens"].observe(started, 400, 0.2)
            steps = (now - t0) * self.decode_tokens_per_second
            for m, n, med in (("prefill", started / 4, self.ttft), ("decode", steps, tpot)):
                h[f"tgi_batch_forward_duration:{m}"].observe(n, med * 0.9, 0.3)
                h[f"tgi_batch_inference_duration:{m}"].observe(n, med, 0.3)
                h[f"tgi_batch_decode_duration:{m}"].observe(n, med * 0.05, 0.3)
                h[f"tgi_batch_filter_duration:{m}"].observe(n, med * 0.02, 0.3)
            h["tgi_batch_concat_duration:decode"].observe(started / 4, 0.0008, 0.3)
            h["tgi_batch_next_size"].observe(steps, max(1.0, self.running(now)), 0.3)
        elif self.kind == "trtllm":  # observed when a request finishes
            h["time_to_first_token_seconds"].observe(finished, self.ttft + wait, 0.45)
            h["request_queue_time_seconds"].observe(finished, max(wait, 0.01), 0.8)
            h["e2e_request_latency_seconds"].observe(finished, self.duration + wait, 0.35)
        elif self.kind == "sglang":
            h["time_to_first_token_seconds"].observe(started, self.ttft + wait, 0.45)
            h["inter_token_latency_seconds"].observe(finished * self.output_tokens, tpot, 0.25)
            h["e2e_request_latency_seconds"].observe(finished, self.duration + wait, 0.35)
            h["queue_time_seconds"].observe(started, max(wait, 0.005), 0.8)

    # ---------------------------------------------------------------------------- render

    def render(self, now: float | None = None) -> bytes:
        """The payload the engine would serve at `now` (default: the clock)."""
        if now is None:
            now = self.clock()
        cached = self._rendered
        if cached is not None and 0 <= now - cached[0] < self.cache_seconds:
            return cached[1]
        self._advance_hists(now)
        body = _renderer(self.kind)(self, now).encode()
        self._rendered = (now, body)
        return body

    def _counts(self, now: float) -> tuple[int, int, int]:
        return (
            int(self.generation_tokens_at(now)),
            int(self.prompt_tokens_at(now)),
            int(self.requests_at(now)),
        )

    def _raw_visible(self, key: str, now: float) -> float:
        """A counter since the last restart, before wire formatting."""
        return self._raw[key](now) - self._base(key, now)


def llamacpp_prompt_split(prompt: float) -> tuple[float, float]:
    """(computed, cached) parts of `prompt` tokens: 30 % served from llama.cpp's prompt cache."""
    cached = float(math.floor(prompt * 0.3))
    return prompt - cached, cached


def _renderer(kind: str) -> Callable[[SimEngine, float], str]:
    from .registry import RENDERERS  # the renderers import this module

    return RENDERERS[kind]
