#!/usr/bin/env python3
"""TEST DOUBLE for cAdvisor (moneytracker-test/cadvisor-standin). It is not cAdvisor.

What it does, so the deploy of the monitoring role can be tested where no registry is reachable:
- parses its command line the way cAdvisor's Go flag package does (-name=value / --name=value,
  bare booleans) and exits 2 on a flag name that cAdvisor's --help does not list, on a metric kind
  that --enable_metrics/--disable_metrics do not accept, or on a malformed duration, boolean or
  event-storage limit. The lists below come from `cadvisor --help` of v0.49.1 (plus `pressure`,
  added later); they are NOT proof that the pinned release accepts the flags;
- listens on --listen_ip:--port (default all addresses, 8080) and answers GET /healthz ("ok") and
  GET /metrics (Prometheus text format): the parsed flags (cadvisor_standin_flag_info), what the
  container can see (the read-only mounts, the Docker API through the /var/run mount, whether
  /dev/kmsg can be read) and a few fixed cAdvisor-like series for one sample container named
  `cadvisor-standin-sample` (working set at 95% of its limit, no OOM events), so that Prometheus
  has something to scrape and evaluate.
What it does not do: watch containers, read cgroups, detect OOM kills, or cost what cAdvisor costs.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import socket
import sys
import time

BOOL_FLAGS = {
    "add_dir_header", "allow_dynamic_housekeeping", "alsologtostderr", "disable_root_cgroup_stats",
    "docker-tls", "docker_only", "enable_load_reader", "log_cadvisor_usage", "logtostderr", "one_output",
    "profiling", "skip_headers", "skip_log_headers", "storage_driver_es_enable_sniffer",
    "storage_driver_kafka_ssl_verify", "storage_driver_secure", "store_container_labels", "version",
}
DURATION_FLAGS = {
    "crio_client_timeout", "global_housekeeping_interval", "housekeeping_interval", "max_housekeeping_interval",
    "mesos_agent_timeout", "resctrl_interval", "storage_driver_buffer_duration", "storage_duration",
    "update_machine_info_interval",
}
METRIC_FLAGS = {"enable_metrics", "disable_metrics"}
OTHER_FLAGS = {
    "application_metrics_count_limit", "boot_id_file", "bq_account", "bq_credentials_file", "bq_id",
    "bq_project_id", "bq_secret", "collector_cert", "collector_key", "container_hints", "containerd",
    "containerd-namespace", "containerd_env_metadata_whitelist", "docker", "docker-tls-ca", "docker-tls-cert",
    "docker-tls-key", "docker_env_metadata_whitelist", "docker_root", "env_metadata_whitelist",
    "event_storage_age_limit", "event_storage_event_limit", "http_auth_file", "http_auth_realm",
    "http_digest_file", "http_digest_realm", "listen_ip", "log_backtrace_at", "log_dir", "log_file",
    "log_file_max_size", "machine_id_file", "max_procs", "mesos_agent", "perf_events_config", "podman", "port",
    "prometheus_endpoint", "raw_cgroup_prefix_whitelist", "referenced_reset_interval", "stderrthreshold",
    "storage_driver", "storage_driver_db", "storage_driver_es_host", "storage_driver_es_index",
    "storage_driver_es_type", "storage_driver_host", "storage_driver_influxdb_retention_policy",
    "storage_driver_kafka_broker_list", "storage_driver_kafka_ssl_ca", "storage_driver_kafka_ssl_cert",
    "storage_driver_kafka_ssl_key", "storage_driver_kafka_topic", "storage_driver_password",
    "storage_driver_table", "storage_driver_user", "url_base_prefix", "v", "vmodule",
    "whitelisted_container_labels",
}
METRIC_KINDS = {
    "advtcp", "app", "cpu", "cpuLoad", "cpu_topology", "cpuset", "disk", "diskIO", "hugetlb", "memory",
    "memory_numa", "network", "oom_event", "percpu", "perf_event", "pressure", "process", "referenced_memory",
    "resctrl", "sched", "tcp", "udp",
}
GO_DURATION = re.compile(r"^(0|[-+]?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$")
MOUNTS = ("/rootfs", "/var/run", "/sys", "/var/lib/docker", "/dev/disk")
SAMPLE = 'id="/system.slice/docker-standin.scope",image="cadvisor-standin-sample",name="cadvisor-standin-sample"'


def die(message: str) -> None:
    print(f"cadvisor-standin: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv: list[str]) -> dict[str, str]:
    flags: dict[str, str] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("-") or arg in ("-", "--"):
            die(f"unexpected argument {arg!r} (cAdvisor takes flags only)")
        name, eq, value = arg.lstrip("-").partition("=")
        if name in BOOL_FLAGS:
            value = value if eq else "true"
            if value not in ("true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False"):
                die(f'invalid boolean value "{value}" for -{name}')
        elif name in DURATION_FLAGS | METRIC_FLAGS | OTHER_FLAGS:
            if not eq:
                if not args:
                    die(f"flag needs an argument: -{name}")
                value = args.pop(0)
        else:
            die(f"flag provided but not defined: -{name}")
        if name in DURATION_FLAGS and not GO_DURATION.match(value):
            die(f'invalid value "{value}" for flag -{name}: parse error')
        if name in METRIC_FLAGS:
            for kind in filter(None, value.split(",")):
                if kind not in METRIC_KINDS:
                    die(f'invalid value "{value}" for flag -{name}: unsupported metric "{kind}" specified')
        if name in ("event_storage_event_limit", "event_storage_age_limit"):
            for item in value.split(","):
                key, sep, limit = item.partition("=")
                ok = bool(key) and sep and (limit.isdigit() if name.endswith("event_limit") else GO_DURATION.match(limit))
                if not ok:
                    die(f'invalid value "{value}" for flag -{name}')
        flags[name] = value
    return flags


def readable(path: str) -> int:
    try:
        os.listdir(path)
        return 1
    except OSError:
        return 0


def docker_api_up() -> int:
    """GET /_ping on the Docker socket seen through the read-only /var/run mount."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect("/var/run/docker.sock")
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return 1 if s.recv(64).split(b" ")[1:2] == [b"200"] else 0
    except (OSError, IndexError):
        return 0


def kmsg() -> tuple[int, str]:
    """Can this container read the kernel log (what cAdvisor's OOM detection reads)?"""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return 0, exc.strerror or type(exc).__name__
    try:
        os.read(fd, 8192)
        return 1, "ok"
    except BlockingIOError:
        return 1, "ok"
    except OSError as exc:
        return 0, exc.strerror or type(exc).__name__
    finally:
        os.close(fd)


def esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(flags: dict[str, str], started: float) -> str:
    out = ["# HELP cadvisor_standin_info The cAdvisor TEST DOUBLE (not cAdvisor) and its command line.",
           "# TYPE cadvisor_standin_info gauge",
           f'cadvisor_standin_info{{args="{esc(json.dumps(sys.argv[1:]))}"}} 1',
           "# HELP cadvisor_standin_flag_info One series per parsed flag.",
           "# TYPE cadvisor_standin_flag_info gauge"]
    out += [f'cadvisor_standin_flag_info{{flag="{esc(k)}",value="{esc(v)}"}} 1' for k, v in sorted(flags.items())]
    out += ["# HELP cadvisor_standin_path_readable 1 if the container can list the mount point.",
            "# TYPE cadvisor_standin_path_readable gauge"]
    out += [f'cadvisor_standin_path_readable{{path="{p}"}} {readable(p)}' for p in MOUNTS]
    ok, why = kmsg()
    out += ["# HELP cadvisor_standin_kmsg_readable 1 if /dev/kmsg can be read (cAdvisor's OOM event source).",
            "# TYPE cadvisor_standin_kmsg_readable gauge",
            f'cadvisor_standin_kmsg_readable{{reason="{esc(why)}"}} {ok}',
            "# HELP cadvisor_standin_docker_api_up 1 if GET /_ping on /var/run/docker.sock answers 200.",
            "# TYPE cadvisor_standin_docker_api_up gauge",
            f"cadvisor_standin_docker_api_up {docker_api_up()}",
            "# HELP container_last_seen Last time a container was seen by the exporter",
            "# TYPE container_last_seen gauge",
            f"container_last_seen{{{SAMPLE}}} {int(time.time())}",
            "# HELP container_start_time_seconds Start time of the container since unix epoch in seconds.",
            "# TYPE container_start_time_seconds gauge",
            f"container_start_time_seconds{{{SAMPLE}}} {int(started)}",
            "# HELP container_memory_working_set_bytes Current working set in bytes.",
            "# TYPE container_memory_working_set_bytes gauge",
            f"container_memory_working_set_bytes{{{SAMPLE}}} 99614720",
            "# HELP container_spec_memory_limit_bytes Memory limit for the container.",
            "# TYPE container_spec_memory_limit_bytes gauge",
            f"container_spec_memory_limit_bytes{{{SAMPLE}}} 104857600",
            "# HELP container_oom_events_total Count of out of memory events observed for the container",
            "# TYPE container_oom_events_total counter",
            f"container_oom_events_total{{{SAMPLE}}} 0"]
    return "\n".join(out) + "\n"


def main() -> None:
    flags = parse_flags(sys.argv[1:])
    if flags.get("version") in ("true", "1", "t", "TRUE", "True"):
        print("cAdvisor stand-in (TEST DOUBLE, not cAdvisor)")
        return
    port = int(flags.get("port", "8080"))
    listen = flags.get("listen_ip", "")
    started = time.time()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self, head=False):  # noqa: N802 (http.server's name)
            if self.path == "/healthz":
                body, ctype = b"ok", "text/plain; charset=utf-8"
            elif self.path == flags.get("prometheus_endpoint", "/metrics"):
                body, ctype = metrics(flags, started).encode(), "text/plain; version=0.0.4; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def do_HEAD(self):  # noqa: N802 (wget --spider, the health check, sends HEAD; Go's mux answers it)
            self.do_GET(head=True)

        def log_message(self, fmt, *args):  # health checks every few seconds: keep the log quiet
            pass

    http.server.ThreadingHTTPServer.address_family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    server = http.server.ThreadingHTTPServer((listen, port), Handler)
    print(f"cadvisor-standin (TEST DOUBLE) listening on {listen or '*'}:{port} with {json.dumps(flags)}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
