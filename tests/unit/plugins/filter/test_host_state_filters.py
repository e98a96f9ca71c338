"""paths_differing (plugins/filter/host_state.py): which managed paths are not as the tasks leave
them. The roles include their writing tasks only when this (or another difference) is not empty,
so a wrong answer here would either skip a needed change (a path reported equal) or cost a task
per path; the roles' Molecule scenarios (idempotence, drift put right) run it on real hosts."""
import pytest

DIR = {"dir": True, "mode": "0755", "uid": 0, "gid": 0, "mtime": 1.0}


@pytest.fixture(scope="module")
def mod(installed_filter):
    return installed_filter("host_state")


def test_dict_form(mod):
    state = {"/a": DIR, "/b": dict(DIR, mode="0700"), "/c": None, "/f": {"dir": False, "mode": "0644", "sha1": "x"}}
    wanted = {"/a": {"dir": True, "mode": "0755"}, "/b": {"dir": True, "mode": "0755"},
              "/c": {"dir": True}, "/d": {"dir": True}, "/f": {"sha1": "y"}}
    assert mod.paths_differing(state, wanted) == ["/b", "/c", "/d", "/f"]
    assert mod.paths_differing(state, {"/a": {"mode": "0755", "uid": 0}}) == []


def test_list_form_and_links(mod):
    state = {"/l1": dict(DIR, link="/opt/x"), "/l2": dict(DIR, link="/tmp"), "/a": DIR}
    wanted = [{"path": "/l1", "src": "/opt/x"}, {"path": "/l2", "src": "/opt/y"},
              {"path": "/a", "dir": True, "mode": "0755"}, {"path": "/a", "uid": 0}]
    assert mod.paths_differing(state, wanted) == ["/l2"]
    # A directory where a link should be (no link key) differs.
    assert mod.paths_differing({"/l": DIR}, [{"path": "/l", "src": "/x"}]) == ["/l"]


def test_bad_input_is_an_error(mod):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        mod.paths_differing([], {})
    with pytest.raises(AnsibleFilterError):
        mod.paths_differing({}, [{"mode": "0755"}])
