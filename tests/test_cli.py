"""The CLI as users run it: exit codes, stdin, several outputs, one-line errors, no tracebacks."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import cli
from builders import LLM, Tree, to_json_bytes, to_pb

CORE = Path(__file__).resolve().parent.parent / "sample_traces" / "core"
LEAKY = Tree("root", {"tenant_id": "acme", "workflow_id": "w"}, [Tree("pool", {}, [Tree("chat", LLM)])]).spans()


def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_exit_codes_follow_the_gate(tmp_path):
    f = tmp_path / "t.pb"
    f.write_bytes(to_pb(LEAKY))
    assert invoke("check", str(f)).exit_code == 1
    assert invoke("check", "--fail-on", "never", str(f)).exit_code == 0
    assert invoke("check", str(CORE / "clean.pb.gz")).exit_code == 0


def test_stdin_dash():
    res = invoke("check", "--format", "json", "-", input=to_json_bytes(LEAKY))
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["summary"]["findings"] == {"ATTR001": 2}
    assert doc["run"]["inputs"] == ["-"]


def test_several_outputs_in_one_run(tmp_path):
    f = tmp_path / "t.json"
    f.write_bytes(to_json_bytes(LEAKY))
    out = tmp_path / "r.json"
    res = invoke("check", "--format", "text", "--format", f"json:{out}", str(f))
    assert res.stdout.startswith("Trace attribution audit: 1 traces, 3 spans, 1 LLM calls")
    assert json.loads(out.read_text())["summary"]["llm_calls"] == 1


def test_output_file_not_created_when_input_is_bad(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    out = tmp_path / "r.json"
    res = invoke("check", "--format", "json", "-o", str(out), str(bad))
    assert res.exit_code == 2
    assert res.stderr == f"auditor: error: {bad}: line 1 column 2 (offset 1): invalid JSON: Expecting property name enclosed in double quotes\n"
    assert not out.exists()


def test_unknown_format_and_bad_gate_spec_are_usage_errors(tmp_path):
    f = tmp_path / "t.pb"
    f.write_bytes(to_pb(LEAKY))
    res = invoke("check", "--format", "yaml", str(f))
    assert res.exit_code == 2 and res.stderr.startswith("auditor: error: --format 'yaml': unknown format 'yaml'")
    res = invoke("check", "--max-unattributed-pct", "tenant_id", str(f))
    assert res.exit_code == 2 and "expected KEY=N" in res.stderr
    res = invoke("check", "--max-unattributed-pct", "nokey=5", str(f))
    assert res.exit_code == 2 and "--max-unattributed-pct: 'nokey' is not a key of the schema" in res.stderr


def test_max_unattributed_pct_gate(tmp_path):
    f = tmp_path / "t.pb"
    f.write_bytes(to_pb(LEAKY))
    res = invoke("check", "--fail-on", "never", "--max-unattributed-pct", "tenant_id=50", "--format", "json", str(f))
    assert res.exit_code == 1
    gate = json.loads(res.stdout)["summary"]["gate"]
    assert gate["passed"] is False
    assert gate["reasons"] == ["tenant_id: 100.00% of LLM spend unattributed (limit 50%)"]


def test_schema_errors_name_path_and_line(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text("version: 1\nkeys:\n  tenant_id:\n    sources:\n      - attribut: tenant.id\n")
    f = tmp_path / "t.pb"
    f.write_bytes(to_pb(LEAKY))
    res = invoke("check", "--schema", str(s), str(f))
    assert res.exit_code == 2
    assert res.stderr.startswith(f"auditor: error: {s}: $.keys.tenant_id.sources[0] (line 5): expected a source with exactly one of")


def test_merge_command_equals_single_run(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for name, out in (("threadpool", a), ("baggage_dropped", b)):
        invoke("check", "--format", f"json:{out}", str(CORE / f"{name}.pb.gz"))
    merged = invoke("merge", "--format", "json", str(a), str(b))
    whole = invoke("check", "--format", "json", str(CORE / "threadpool.pb.gz"), str(CORE / "baggage_dropped.pb.gz"))
    m, w = json.loads(merged.stdout), json.loads(whole.stdout)
    m.pop("run"), w.pop("run")
    assert merged.exit_code == whole.exit_code == 1
    assert m == w


def test_real_process_no_traceback_on_garbage(tmp_path):
    f = tmp_path / "g.bin"
    f.write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    p = subprocess.run([sys.executable, "-m", "auditor", "check", str(f)], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith(f"auditor: error: {f}: expected an OTLP ExportTraceServiceRequest/TracesData protobuf")
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1


def test_schema_help_shows_its_real_default():
    for cmd in ("check", "serve", "cost"):
        out = CliRunner().invoke(cli, [cmd, "--help"], terminal_width=400).output
        assert "[default: (detected: default + the dialects' presets)]" in out, cmd


def test_ctrl_c_exits_130_with_one_line_not_1_which_says_the_gate_failed():
    proc = subprocess.Popen([sys.executable, "-m", "auditor", "check", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # started, blocked reading stdin
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.decode().splitlines() == ["auditor: interrupted"]
    assert out == b""


def test_the_command_line_starts_without_the_servers_libraries():
    """``auditor check`` (every command but serve and ui) never pays for uvicorn, starlette or gRPC."""
    code = "import sys, auditor.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'uvicorn', 'starlette', 'grpc'}))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
