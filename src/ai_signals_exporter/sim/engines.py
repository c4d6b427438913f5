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
from bisect import bisect_left, bisect_right
import time
from array import array
from typing import Callable

from aiohttp import web
from prometheus_client.utils import floatToGoString as _go  # vLLM/SGLang print floats so

Load = Callable[[float], float]

KINDS = ("vllm", "tgi", "sglang", "triton", "llamacpp")
_BURSTY = {"tgi", "triton"}

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


# ------------------------------------------------------------------------------ formatting


def _plain(v: float) -> str:
    """Rust and prometheus-cpp style (TGI, Triton): integers without a decimal point."""
    if v == math.inf:
        return "+Inf"
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e17 else repr(f)


def _cpp(v: float) -> str:
    """C++ ostream defaults (llama.cpp): 6 significant digits, so large counters step."""
    return f"{float(v):g}"


def _split(total: int, n: int) -> list[int]:
    """Split an integer count over n ranks: sums to `total`, every part monotone in `total`."""
    q, r = divmod(int(total), n)
    return [q + (1 if i < r else 0) for i in range(n)]


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
        body = _RENDERERS[self.kind](self, now).encode()
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


# ------------------------------------------------------------------------------- renderers


class _Out:
    __slots__ = ("parts", "fmt")

    def __init__(self, fmt: Callable[[float], str]) -> None:
        self.parts: list[str] = []
        self.fmt = fmt

    def head(self, name: str, typ: str, help: str | None) -> None:
        if help is not None:
            self.parts.append(f"# HELP {name} {help}\n")
        self.parts.append(f"# TYPE {name} {typ}\n")

    def line(self, name: str, labels: str, value: float) -> None:
        if labels:
            self.parts.append(f"{name}{{{labels}}} {self.fmt(value)}\n")
        else:
            self.parts.append(f"{name} {self.fmt(value)}\n")

    def text(self) -> str:
        return "".join(self.parts)


Pairs = tuple[tuple[str, str], ...]


def _labels(pairs: Pairs) -> str:
    return ",".join(f'{k}="{v}"' for k, v in pairs)


def _hist_lines(
    out: _Out, name: str, label_sets: list[Pairs], h: _Hist, *, sort: bool, le_fmt=_go,
    copies: bool = False,
) -> None:
    """Bucket/count/sum lines for one histogram, split over `label_sets` (one per rank).
    prometheus_client sorts label names (so `le` lands among them) and writes `_count` before
    `_sum`; the Rust and C++ clients append `le` and write `_sum` first."""
    n = len(label_sets)
    counts = h.counts()
    # `copies`: every label set publishes the whole histogram (replicated scheduler state).
    split = n > 1 and not copies
    per_rank = [list(x) for x in zip(*(_split(c, n) for c in counts))] if split else [counts] * n
    les = [le_fmt(b) for b in h.bounds] + ["+Inf"]
    totals = _split(int(h.total), n) if split else [int(h.total)] * n
    part_sum = h.sum / n if split else h.sum
    parts = out.parts
    fmt = out.fmt
    for i, pairs in enumerate(label_sets):
        # One template per label set: a NUL character marks where the `le` value goes.
        with_le = pairs + (("le", "\0"),)
        if sort:
            with_le = tuple(sorted(with_le))
        before, _, after = _labels(with_le).partition("\0")
        head = f"{name}_bucket{{{before}"
        tail = after + "} "
        for le, c in zip(les, per_rank[i]):
            parts.append(f"{head}{le}{tail}{fmt(c)}\n")
        lab = _labels(pairs)
        if sort:
            out.line(f"{name}_count", lab, totals[i])
            out.line(f"{name}_sum", lab, part_sum)
        else:
            out.line(f"{name}_sum", lab, part_sum)
            out.line(f"{name}_count", lab, totals[i])


def _created(out: _Out, name: str, help: str, labels: list[str], ts: float) -> None:
    out.head(f"{name}_created", "gauge", help)
    for lab in labels:
        out.line(f"{name}_created", lab, ts)


def _python_process(out: _Out, e: SimEngine, now: float) -> None:
    elapsed = max(0.0, now - e._created)
    out.head("python_gc_objects_collected_total", "counter", "Objects collected during gc")
    for g, v in (("0", 7431 + elapsed * 3), ("1", 4936 + elapsed), ("2", 1661 + elapsed / 10)):
        out.line("python_gc_objects_collected_total", f'generation="{g}"', float(int(v)))
    out.head("python_gc_objects_uncollectable_total", "counter", "Uncollectable objects found during GC")
    for g in "012":
        out.line("python_gc_objects_uncollectable_total", f'generation="{g}"', 0.0)
    out.head("python_gc_collections_total", "counter", "Number of times this generation was collected")
    for g, v in (("0", 1151 + elapsed), ("1", 104 + elapsed / 10), ("2", 6 + elapsed / 100)):
        out.line("python_gc_collections_total", f'generation="{g}"', float(int(v)))
    out.head("python_info", "gauge", "Python platform information")
    out.line(
        "python_info",
        'implementation="CPython",major="3",minor="12",patchlevel="11",version="3.12.11"',
        1.0,
    )
    out.head("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.")
    out.line("process_virtual_memory_bytes", "", 6.634254336e09)
    out.head("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
    out.line("process_resident_memory_bytes", "", 5.106151424e09)
    out.head("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
    out.line("process_start_time_seconds", "", round(e._created, 2))
    out.head("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
    out.line("process_cpu_seconds_total", "", round(elapsed * 0.9, 2))
    out.head("process_open_fds", "gauge", "Number of open file descriptors.")
    out.line("process_open_fds", "", 49.0)
    out.head("process_max_fds", "gauge", "Maximum number of open file descriptors.")
    out.line("process_max_fds", "", 1048576.0)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_VLLM_HIST_HELP = {
    "iteration_tokens_total": "Histogram of number of tokens per engine_step.",
    "request_prompt_tokens": "Number of prefill tokens processed.",
    "request_generation_tokens": "Number of generation tokens processed.",
    "request_max_num_generation_tokens": "Histogram of maximum number of requested generation tokens.",
    "request_params_n": "Histogram of the n request parameter.",
    "request_params_max_tokens": "Histogram of the max_tokens request parameter.",
    "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
    "inter_token_latency_seconds": "Histogram of inter-token latency in seconds.",
    "request_time_per_output_token_seconds": "Histogram of time_per_output_token_seconds per request.",
    "e2e_request_latency_seconds": "Histogram of e2e request latency in seconds.",
    "request_queue_time_seconds": "Histogram of time spent in WAITING phase for request.",
    "request_inference_time_seconds": "Histogram of time spent in RUNNING phase for request.",
    "request_prefill_time_seconds": "Histogram of time spent in PREFILL phase for request.",
    "request_decode_time_seconds": "Histogram of time spent in DECODE phase for request.",
}


def _render_vllm(e: SimEngine, now: float) -> str:
    """vLLM V1 through prometheus_client: sorted label names, `_total` counters with separate
    `_created` gauges, `_count` before `_sum`, Go-style float formatting."""
    out = _Out(_go)
    _python_process(out, e, now)
    m = _esc(e.model)
    n = e.ranks
    pairs = [(("engine", str(i)), ("model_name", m)) for i in range(n)]
    labs = [_labels(p) for p in pairs]
    running = _split(round(e.running(now)), n)
    waiting = _split(round(e.waiting(now)), n)
    kv = e.kv_cache_usage(now)
    gen, prompt, reqs = e._counts(now)
    created = e._created

    out.head("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
    for lab, v in zip(labs, running):
        out.line("vllm:num_requests_running", lab, float(v))
    out.head("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
    for lab, v in zip(labs, waiting):
        out.line("vllm:num_requests_waiting", lab, float(v))
    out.head(
        "vllm:num_requests_waiting_by_reason", "gauge", "Number of requests waiting, by reason."
    )
    for lab, v in zip(labs, waiting):
        deferred = v // 5  # included in num_requests_waiting
        out.line("vllm:num_requests_waiting_by_reason", f'{lab},reason="capacity"', float(v - deferred))
        out.line("vllm:num_requests_waiting_by_reason", f'{lab},reason="deferred"', float(deferred))
    out.head(
        "vllm:engine_sleep_state",
        "gauge",
        "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; "
        "weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
    )
    for lab in labs:
        for state, v in (("awake", 1.0), ("weights_offloaded", 0.0), ("discard_all", 0.0)):
            out.line("vllm:engine_sleep_state", f'{lab},sleep_state="{state}"', v)
    out.head("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.")
    for lab in labs:
        out.line("vllm:kv_cache_usage_perc", lab, kv)

    def counter(name: str, help: str, total: float, extra: str = "") -> None:
        out.head(f"vllm:{name}_total", "counter", help)
        rows = [(f"{lab}{extra}", v) for lab, v in zip(labs, _split(int(total), n))]
        for lab, v in rows:
            out.line(f"vllm:{name}_total", lab, float(v))
        _created(out, f"vllm:{name}", help, [lab for lab, _ in rows], created)

    counter("prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", prompt)
    counter("prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", prompt * 0.3)
    counter("mm_cache_queries", "Multi-modal cache queries, in terms of number of queried items.", 0)
    counter("mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items.", 0)
    counter("num_preemptions", "Cumulative number of preemption from the engine.", reqs * 0.002)
    counter("prompt_tokens", "Number of prefill tokens processed.", prompt)
    counter("generation_tokens", "Number of generation tokens processed.", gen)

    help_ok = "Count of successfully processed requests."
    out.head("vllm:request_success_total", "counter", help_ok)
    failed = int(e.failed_requests_at(now))
    abort, error = failed - failed // 4, failed // 4
    length, repetition = reqs // 10, reqs // 50
    created_rows = []
    for reason, total in (
        ("abort", abort),
        ("error", error),
        ("length", length),
        ("repetition", repetition),
        ("stop", reqs - length - repetition),
    ):
        for i, v in enumerate(_split(total, n)):
            # prometheus_client sorts label names: engine, finished_reason, model_name
            row = f'engine="{i}",finished_reason="{reason}",model_name="{m}"'
            out.line("vllm:request_success_total", row, float(v))
            created_rows.append(row)
    _created(out, "vllm:request_success", help_ok, created_rows, created)

    for short, h in e._hists.items():
        name = f"vllm:{short}"
        out.head(name, "histogram", _VLLM_HIST_HELP[short])
        _hist_lines(out, name, pairs, h, sort=True)
        _created(out, name, _VLLM_HIST_HELP[short], labs, created)

    out.head("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
    out.line(
        "vllm:cache_config_info",
        'block_size="16",cache_dtype="auto",calculate_kv_scales="False",cpu_offload_gb="0",'
        f'enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",is_attention_free="False",'
        f'num_cpu_blocks="None",num_gpu_blocks="{int(e.kv_capacity_tokens // 16)}",'
        'num_gpu_blocks_override="None",prefix_caching_hash_algo="sha256",sliding_window="None",'
        'swap_space="4",swap_space_bytes="4294967296"',
        1.0,
    )
    return out.text()


def _render_tgi(e: SimEngine, now: float) -> str:
    """TGI's Rust exporter: counters without `_total`, some families without HELP, blank line
    between families, `le` appended last, integers without a decimal point."""
    out = _Out(_plain)
    gen, prompt, reqs = e._counts(now)
    started = int(e.started(now) + 1e-9) - e._started_at_restart
    failures = int(e.failed_requests_at(now))
    steps = int((now - e._created) * e.decode_tokens_per_second)

    def blank() -> None:
        out.parts.append("\n")

    out.head("tgi_request_success", "counter", "Number of successful requests")
    out.line("tgi_request_success", "", reqs)
    blank()
    out.head("tgi_batch_concat", "counter", None)
    out.line("tgi_batch_concat", 'reason="backpressure"', started // 4)
    blank()
    out.head("tgi_request_count", "counter", "Total number of requests")
    out.line("tgi_request_count", "", max(started, reqs + failures))
    blank()
    out.head("tgi_request_failure", "counter", None)
    out.line("tgi_request_failure", 'err="validation"', failures - failures // 3)
    out.line("tgi_request_failure", 'err="generation"', failures // 3)
    blank()
    out.head(
        "tgi_batch_inference_success",
        "counter",
        "Number of successful inference calls per method (prefill or decode)",
    )
    out.line("tgi_batch_inference_success", 'method="prefill"', started // 4)
    out.line("tgi_batch_inference_success", 'method="decode"', steps)
    blank()
    out.head("tgi_batch_inference_count", "counter", "Inference calls per method (prefill or decode)")
    out.line("tgi_batch_inference_count", 'method="decode"', steps)
    out.line("tgi_batch_inference_count", 'method="prefill"', started // 4)
    blank()
    out.head("tgi_queue_size", "gauge", "Current queue size")
    out.line("tgi_queue_size", "", round(e.waiting(now)))
    blank()
    out.head("tgi_batch_current_max_tokens", "gauge", "Maximum tokens for the current batch")
    running = round(e.running(now))
    out.line("tgi_batch_current_max_tokens", "", running * (e.prompt_tokens + e.output_tokens))
    blank()
    out.head("tgi_batch_current_size", "gauge", "Current batch size")
    out.line("tgi_batch_current_size", "", running)
    blank()
    helps = {
        "tgi_request_duration": "Request duration",
        "tgi_request_validation_duration": "Request validation duration",
        "tgi_request_queue_duration": "Request queue duration",
        "tgi_request_inference_duration": "Request inference duration",
        "tgi_request_mean_time_per_token_duration": "Mean time per token per request",
        "tgi_request_input_length": "Input token length per request",
        "tgi_request_generated_tokens": "Generated tokens per request",
        "tgi_request_max_new_tokens": "Maximum new tokens per request",
        "tgi_batch_forward_duration": "Batch forward duration per method (prefill or decode)",
        "tgi_batch_inference_duration": "Batch inference duration",
        "tgi_batch_decode_duration": "Time spent decoding a batch per method (prefill or decode)",
        "tgi_batch_filter_duration": (
            "Time spent filtering batches and sending generated tokens per method (prefill or decode)"
        ),
        "tgi_batch_concat_duration": None,
        "tgi_batch_next_size": "Batch size of the next batch",
    }
    done: set[str] = set()
    for key, h in e._hists.items():
        name, _, method = key.partition(":")
        if name not in done:
            if done:
                blank()
            out.head(name, "histogram", helps[name])
            done.add(name)
        # The token histograms' sums are the token counters the mapping reads.
        if name == "tgi_request_generated_tokens":
            h.sum = float(gen)
        elif name == "tgi_request_input_length":
            h.sum = float(prompt)
        _hist_lines(out, name, [(("method", method),) if method else ()], h, sort=False, le_fmt=_plain)
    blank()
    out.head("tgi_request_skipped_tokens", "summary", None)
    for q in ("0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"):
        out.line("tgi_request_skipped_tokens", f'quantile="{q}"', 0)
    out.line("tgi_request_skipped_tokens_sum", "", 0)
    out.line("tgi_request_skipped_tokens_count", "", max(0, reqs - 1))
    blank()
    return out.text()


def _render_sglang(e: SimEngine, now: float) -> str:
    """SGLang (current release) with --enable-metrics-for-all-schedulers and priority
    scheduling: every TP rank (`ranks`) publishes the same scheduler state, labelled
    `engine_type, model_name, pp_rank, tp_rank`; gauges as the total (`priority=""`) and per
    priority.  Tokenizer-side counters and TTFT carry `model_name` only."""
    out = _Out(_go)
    m = _esc(e.model)
    n = e.ranks
    sched = [f'engine_type="unified",model_name="{m}",pp_rank="0",tp_rank="{i}"' for i in range(n)]
    gen, prompt, reqs = e._counts(now)
    running = round(e.running(now))
    waiting = round(e.waiting(now))
    kv = e.kv_cache_usage(now)

    def gauge(name: str, help: str, total: float, by_priority: bool = True) -> None:
        out.head(f"sglang:{name}", "gauge", help)
        for lab in sched:
            if not by_priority:
                out.line(f"sglang:{name}", lab, float(total))
                continue
            high = int(total) // 3 if float(total).is_integer() else total / 3
            for prio, v in (("", total), ("0", total - high), ("10", high)):
                out.line(f"sglang:{name}", f'{lab},priority="{prio}"', float(v))

    out.head("sglang:http_requests_active", "gauge", "Number of currently active HTTP requests")
    out.line("sglang:http_requests_active", 'endpoint="/generate",method="POST"', float(running + waiting))
    gauge("num_running_reqs", "The number of running requests.", running)
    gauge("num_queue_reqs", "The number of requests in the waiting queue.", waiting)
    gauge("num_used_tokens", "The number of used tokens.", round(e.kv_capacity_tokens * kv), False)
    gauge("token_usage", "The token usage.", round(kv, 4), False)
    gauge("cache_hit_rate", "The prefix cache hit rate.", 0.3, False)
    gauge("max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.",
          int(e.kv_capacity_tokens), False)  # fmt: skip
    tput = e.output_tokens * e.load(max(0.0, now - e.started_at))
    gauge("gen_throughput", "The generation throughput (token/s).", round(tput, 2), False)
    gauge("utilization", "The utilization.", round(kv, 2), False)
    out.head("sglang:realtime_tokens_total", "counter",
             "Total number of tokens processed (updated on each log interval). "
             "mode: prefill_compute, prefill_cache, decode.")  # fmt: skip
    cached = int(prompt * 0.3)
    for lab in sched:
        for mode, v in (("prefill_compute", prompt - cached), ("prefill_cache", cached), ("decode", gen)):
            out.line("sglang:realtime_tokens_total", f'{lab},mode="{mode}"', float(v))
    tok = f'model_name="{m}"'
    # The tokenizer's counters advance when a request finishes (mean sizes: a sketch of the
    # finish-time counters the mapping reads only as a fallback).
    for name, help, total in (
        ("prompt_tokens_total", "Number of prefill tokens processed.", e.prompt_tokens * reqs),
        ("generation_tokens_total", "Number of generation tokens processed.", e.output_tokens * reqs),
        ("cached_tokens_total", "Number of cached prompt tokens.", int(e.prompt_tokens * reqs * 0.3)),
        ("num_requests_total", "Number of requests processed.", reqs),
        ("num_aborted_requests_total", "Number of requests aborted.", int(e.failed_requests_at(now))),
    ):
        out.head(f"sglang:{name}", "counter", help)
        out.line(f"sglang:{name}", tok, float(total))
    helps = {
        "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
        "inter_token_latency_seconds": "Histogram of inter-token latency in seconds.",
        "e2e_request_latency_seconds": "Histogram of End-to-end request latency in seconds",
        "queue_time_seconds": "Histogram of queueing time in seconds.",
    }
    rank_pairs = [
        (("engine_type", "unified"), ("model_name", m), ("pp_rank", "0"), ("tp_rank", str(i)))
        for i in range(n)
    ]
    for short, h in e._hists.items():
        name = f"sglang:{short}"
        out.head(name, "histogram", helps[short])
        # queue_time is the scheduler's (one copy per rank); the others the tokenizer's
        if short == "queue_time_seconds":
            _hist_lines(out, name, rank_pairs, h, sort=True, copies=True)
        else:
            _hist_lines(out, name, [(("model_name", m),)], h, sort=True)
    return out.text()


_TRITON_CORE = (
    ("nv_inference_request_success", "counter",
     "Number of successful inference requests, all batch sizes"),
    ("nv_inference_request_failure", "counter",
     "Number of failed inference requests, all batch sizes"),
    ("nv_inference_count", "counter",
     "Number of inferences performed (does not include cached requests)"),
    ("nv_inference_exec_count", "counter",
     "Number of model executions performed (does not include cached requests)"),
    ("nv_inference_request_duration_us", "counter",
     "Cumulative inference request duration in microseconds (includes cached requests)"),
    ("nv_inference_queue_duration_us", "counter",
     "Cumulative inference queuing duration in microseconds (includes cached requests)"),
    ("nv_inference_pending_request_count", "gauge",
     "Instantaneous number of pending requests awaiting execution per-model."),
)  # fmt: skip


def _render_triton(e: SimEngine, now: float) -> str:
    """Triton with the TensorRT-LLM backend in an ensemble (ensemble, preprocessing, the TRT-LLM
    model named `e.model`, postprocessing), labelled `model`/`version`; prometheus-cpp layout."""
    out = _Out(_plain)
    gen, prompt, reqs = e._counts(now)
    m = _esc(e.model)
    running = round(e.running(now))
    kv = e.kv_cache_usage(now)
    core_values = {
        "nv_inference_request_success": reqs,
        "nv_inference_request_failure": int(e.failed_requests_at(now)),
        "nv_inference_count": reqs,
        "nv_inference_exec_count": reqs,
        "nv_inference_request_duration_us": int(reqs * e.duration * 1e6),
        "nv_inference_queue_duration_us": int(reqs * 150),
        # Decoupled TRT-LLM: Triton hands requests over at once, the batcher queues them.
        "nv_inference_pending_request_count": 0,
    }
    for name, typ, help in _TRITON_CORE:
        out.head(name, typ, help)
        extra = 'reason="BACKEND",' if name == "nv_inference_request_failure" else ""
        for model in ("ensemble", "preprocessing", m, "postprocessing"):
            out.line(name, f'{extra}model="{model}",version="1"', core_values[name])

    blocks = int(e.kv_capacity_tokens // 64)
    used = int(blocks * kv)
    iterations = int((now - e._created) * e.decode_tokens_per_second)
    trt = (
        ("nv_trt_llm_request_metrics", "TRT LLM request metrics", "request_type", (
            ("context", min(running, 2)), ("scheduled", running), ("max", 256),
            ("active", running), ("waiting", round(e.waiting(now))))),
        ("nv_trt_llm_runtime_memory_metrics", "TRT LLM runtime memory metrics", "memory_type", (
            ("cpu", 0), ("gpu", 1056300000), ("pinned", 168000000))),
        ("nv_trt_llm_kv_cache_block_metrics", "TRT LLM KV cache block metrics",
         "kv_cache_block_type", (
            ("max", blocks), ("free", blocks - used), ("used", used), ("tokens_per", 64),
            ("fraction", round(kv, 6)))),
        ("nv_trt_llm_inflight_batcher_metrics", "TRT LLM inflight_batcher-specific metrics",
         "inflight_batcher_specific_metric", (
            ("total_context_tokens", min(running, 2) * e.prompt_tokens),
            ("generation_requests", running), ("micro_batch_id", 0), ("paused_requests", 0))),
        ("nv_trt_llm_general_metrics", "General TRT LLM metrics", "general_type", (
            ("iteration_counter", iterations), ("timestamp", int(now * 1e6)))),
    )  # fmt: skip
    for name, help, key, rows in trt:
        out.head(name, "gauge", help)
        for value_of_key, v in rows:
            # prometheus-cpp sorts label names: the family's key, then model, version.
            pairs = tuple(sorted(((key, value_of_key), ("model", m), ("version", "1"))))
            out.line(name, _labels(pairs), v)
    for fam, kind, total, median in (
        ("nv_llm_input_token_len", "total_input_tokens", prompt, e.prompt_tokens),
        ("nv_llm_output_token_len", "total_output_tokens", gen, e.output_tokens),
    ):
        h = e._hists[fam]
        h.observe(reqs - h.total, median, 0.5)  # observed once per finished response
        h.sum = float(total)
        out.head(fam, "histogram", "TRT LLM response metrics")
        pairs = (("model", m), ("response_metric_type", kind), ("version", "1"))
        _hist_lines(out, fam, [pairs], h, sort=False, le_fmt=_plain)
    out.head("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)")
    uuid = 'gpu_uuid="GPU-8c5a0f1e-8d2e-4b8a-9f1e-2b7c1d3e4f50"'
    out.line("nv_gpu_utilization", uuid, round(min(1.0, 0.1 + kv), 3))
    return out.text().rstrip("\n")  # Triton's payload has no trailing newline


def _render_llamacpp(e: SimEngine, now: float) -> str:
    """llama-server: no labels, C++ stream formatting (6 significant digits)."""
    out = _Out(_cpp)
    gen, _, _ = e._counts(now)
    prompt, cached = llamacpp_prompt_split(e._raw_visible("prompt", now))
    decode_calls = int(max(0.0, now - e._created) * e.decode_tokens_per_second)
    rows = (
        ("prompt_tokens_total", "counter",
         "Total prompt processing tokens (excluding cached tokens).", prompt),
        ("prompt_tokens_cached_total", "counter", "Total prompt processing tokens (cached tokens).",
         cached),
        ("prompt_seconds_total", "counter", "Prompt process time", prompt / 3000.0),
        ("tokens_predicted_total", "counter", "Number of generation tokens processed.", gen),
        ("tokens_predicted_seconds_total", "counter", "Predict process time",
         gen / e.decode_tokens_per_second),
        ("n_decode_total", "counter", "Total number of llama_decode() calls", decode_calls),
        ("n_busy_slots_per_decode", "counter",
         "Average number of busy slots per llama_decode() call", max(1.0, e.running(now))),
        ("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", 3000.0),
        ("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.",
         e.decode_tokens_per_second),
        ("requests_processing", "gauge", "Number of requests processing.",
         round(e.running(now))),
        ("requests_deferred", "gauge", "Number of requests deferred.", round(e.waiting(now))),
    )  # fmt: skip
    for name, typ, help, v in rows:
        out.head(f"llamacpp:{name}", typ, help)
        out.line(f"llamacpp:{name}", "", v)
    return out.text()


_RENDERERS: dict[str, Callable[[SimEngine, float], str]] = {
    "vllm": _render_vllm,
    "tgi": _render_tgi,
    "sglang": _render_sglang,
    "triton": _render_triton,
    "llamacpp": _render_llamacpp,
}

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def make_app(engines: dict[str, SimEngine]) -> web.Application:
    """An aiohttp app serving each engine's payload at its path (e.g. {"/metrics": e} for one
    pod, {"/pod-0/metrics": a, "/pod-1/metrics": b} for several pods on one server).
    An engine's `status` (!= 200 answers an error) and `delay` (seconds before answering)
    simulate failing and slow targets."""
    import asyncio

    app = web.Application()

    def handler_for(engine: SimEngine):
        async def handler(request: web.Request) -> web.StreamResponse:
            if engine.delay:
                await asyncio.sleep(engine.delay)
            if engine.status != 200:
                return web.Response(status=engine.status, text="simulated failure\n")
            return web.Response(body=engine.render(), headers={"Content-Type": CONTENT_TYPE})

        return handler

    for path, engine in engines.items():
        app.router.add_get(path if path.startswith("/") else "/" + path, handler_for(engine))
    return app
