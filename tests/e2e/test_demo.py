"""The README's main command: `ai-signals-exporter demo` shows every signal area live."""

from __future__ import annotations

import shutil
import subprocess
import sys

from ..helpers.net import free_port, wait_http
from ..helpers.wait import wait_until

AREAS = (b"ai_serving_generation_tokens_per_second{", b"ai_gpu_idle_seconds{", b"ai_gpu_node_non_gpu_pods{",
         b"ai_checkpoint_age_seconds{", b"ai_stream_buffered{")


def test_demo_serves_every_signal_and_prints_a_summary() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_signals_exporter.cli", "demo", f"--web.listen-address=127.0.0.1:{port}",
         "--duration=40"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/-/healthy", timeout=30)
        def every_area() -> bytes | None:
            body = wait_http(base + "/metrics")
            return body if all(a in body for a in AREAS) else None

        body = wait_until(every_area, 35, "every signal area in /metrics", interval=1)
        # The buffering proxy path is detected, the clean one is not.
        assert b'ai_stream_buffered{probe="chat-buffered"} 1' in body
        assert b'ai_stream_buffered{probe="chat-clean"} 0' in body
        check = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=body,
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        page = wait_http(base + "/")
        assert b"serving" in page and b"up" in page
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out[-2000:]
    text = out.decode()
    assert "metrics at http://127.0.0.1:" in text
    assert "serving  llm/llama-8b (vllm):" in text and "tok/s" in text
    assert "stream   chat-buffered: BUFFERED" in text
