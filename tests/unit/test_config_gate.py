"""The app role writes its configuration files only when config.yml's one comparison
(_app_config_todo, from _app_config_wanted_paths in vars/main.yml) finds one differing: a
template task added to tasks/config_write.yml whose file is not in that list would never run on a
host where everything else is in place. Every template the included file renders is either in
the list (by its template name) or written under a condition of its own that config.yml's
comparison names."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "roles" / "app"
# Templates config_write.yml renders under their own condition, each one a term of _app_config_todo.
OWN_CONDITION = {"secrets.env.j2": "old secrets env", "edge-routes.inc.j2": "first routes"}


def rendered_templates():
    names = []
    for task in yaml.safe_load((APP / "tasks" / "config_write.yml").read_text()):
        src = (task.get("ansible.builtin.template") or {}).get("src")
        if src is None:
            continue
        if "item.src" in src:
            names += [item["src"] for item in task["loop"]]
        else:
            names.append(src)
    return names


def test_every_rendered_template_is_compared():
    wanted = yaml.safe_load((APP / "vars" / "main.yml").read_text())["_app_config_templates_0644"]
    compared = {re.search(r"'([\w.-]+\.j2)'", w["sha1"]).group(1) for w in wanted}
    todo = (APP / "tasks" / "config.yml").read_text()
    rendered = rendered_templates()
    assert len(rendered) >= 6, rendered
    for name in rendered:
        assert name in compared or (name in OWN_CONDITION and f"'{OWN_CONDITION[name]}'" in todo), name
