"""The preflight filters (plugins/filter/preflight.py): closest and port_holders, imported from
the collection as installed (ANSIBLE_COLLECTIONS_PATH, else .build/collections) through Ansible's
collection loader, like tests/unit/test_sizing_filters.py."""
import pytest

APP = ["app_backend_mem_limit", "app_frontend_mem_limit", "app_backend_cpus", "app_http_port",
       "app_http_bind", "app_log_max_file", "app_log_max_size", "app_releases_keep"]


@pytest.fixture(scope="module")
def mod(installed_filter):
    return installed_filter("preflight")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("app_backend_mem_limt", "app_backend_mem_limit"), ("app_frontend_mem_limits", "app_frontend_mem_limit"),
     ("app_http_prot", "app_http_port"), ("app_log_max_files", "app_log_max_file"),
     ("app_release_keep", "app_releases_keep"), ("app_backend_cpus", "app_backend_cpus"),
     ("app_zzzz", ""), ("app_", "")],
)
def test_closest(mod, name, expected):
    assert mod.closest(name, APP, "app_") == expected


def test_closest_ignores_the_shared_prefix(mod):
    names = ["moneytracker_db_volume", "moneytracker_db_backup_dir"]
    # Without the prefix 19 shared characters would make any two names look alike.
    assert mod.closest("moneytracker_db_foo", names) != ""
    assert mod.closest("moneytracker_db_foo", names, "moneytracker_db_") == ""
    assert mod.closest("moneytracker_db_volumes", names, "moneytracker_db_") == "moneytracker_db_volume"


def test_closest_cutoff_and_empty(mod):
    assert mod.closest("app_http_prot", [], "app_") == ""
    assert mod.closest("app_http_prot", APP, "app_", 0.99) == ""


SS = """\
LISTEN 0      4096         0.0.0.0:8080      0.0.0.0:*    users:(("docker-proxy",pid=1234,fd=4))
LISTEN 0      4096            [::]:8080         [::]:*    users:(("docker-proxy",pid=1240,fd=4))
LISTEN 0      128        127.0.0.1:40123     0.0.0.0:*    users:(("python3",pid=99,fd=3),("python3",pid=100,fd=3))
LISTEN 0      128                *:22              *:*    users:(("sshd",pid=7,fd=3))
LISTEN 0      128    127.0.0.53%lo:53        0.0.0.0:*
LISTEN 0      128   [::ffff:10.0.0.5]:9000         *:*    users:(("app",pid=5,fd=3))
"""


@pytest.mark.parametrize(
    ("bind", "port", "expected"),
    [
        ("0.0.0.0", 8080, ["0.0.0.0:8080"]),
        ("127.0.0.1", 8080, ["0.0.0.0:8080"]),
        ("::", 8080, ["[::]:8080"]),
        ("0.0.0.0", 40123, ["127.0.0.1:40123"]),
        ("127.0.0.1", 40123, ["127.0.0.1:40123"]),
        ("127.0.0.2", 40123, []),
        ("::1", 40123, []),
        ("10.1.1.1", 22, ["*:22"]),
        ("::1", 22, ["*:22"]),
        ("0.0.0.0", 53, ["127.0.0.53%lo:53"]),
        ("10.0.0.5", 9000, ["[::ffff:10.0.0.5]:9000"]),
        ("10.0.0.6", 9000, []),
        ("0.0.0.0", 8081, []),
        ("[::1]", 8080, ["[::]:8080"]),
    ],
)
def test_port_holders(mod, bind, port, expected):
    assert [h["address"] for h in mod.port_holders(SS, bind, port)] == expected


def test_port_holders_names_the_process(mod):
    assert mod.port_holders(SS, "0.0.0.0", "40123") == [
        {"address": "127.0.0.1:40123", "process": "python3", "pid": "99, 100"}]
    assert mod.port_holders(SS, "0.0.0.0", 53) == [{"address": "127.0.0.53%lo:53", "process": "", "pid": ""}]
    assert mod.port_holders("", "0.0.0.0", 80) == []


@pytest.mark.parametrize(("bind", "port"), [("localhost", 80), ("0.0.0.0", "http")])
def test_port_holders_rejects(mod, bind, port):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        mod.port_holders(SS, bind, port)
