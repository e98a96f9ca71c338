"""`moneytracker-db config`: the role validates a new /etc/moneytracker-db/config.json with it before the
file replaces the old one (ansible.builtin.copy validate=). A valid file exits 0 and shows the
effective configuration; a bad one exits 2 naming the key, and touches nothing on disk."""


def test_config_ok_shows_the_effective_configuration(env):
    env.write_config(retention={"daily": 3}, stop_command=["true"], start_command=["true"])
    r = env.run("config", "--json")
    assert r.rc == 0, r.err
    assert r.data["ok"] is True and r.data["config_path"] == str(env.config)
    cfg = r.data["config"]
    assert cfg["database"] == str(env.db)
    assert cfg["retention"] == {"daily": 3, "weekly": 4, "monthly": 6}  # defaults fill the other tiers
    assert cfg["stop_command"] == ["true"]
    r = env.run("config")
    assert r.rc == 0 and r.out.startswith(f"config ok: {env.config}")


def test_config_bad_key_exits_2_and_creates_nothing(env):
    env.write_config(state_dir=str(env.root / "new-state"), backup_dir=str(env.root / "new-backups"),
                     retention={"daily": -1})
    r = env.run("config", "--json")
    assert r.rc == 2 and r.data["key"] == "retention.daily"
    assert "'retention.daily'" in r.err
    assert not (env.root / "new-state").exists() and not (env.root / "new-backups").exists()
