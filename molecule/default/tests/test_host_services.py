"""What the deploy leaves listening on the host and installed besides the stack.

The default scenario's converge is deploy.yml, whose moneytracker_db role installs cron. With
its recommends, cron pulls in an MTA (exim4, listening on 127.0.0.1:25); the role installs it
without them. The test host image has no cron and no MTA of its own (molecule/shared/testhost),
so what is found here was installed by the deploy.
"""


def test_cron_is_installed_and_running(host):
    # The role really installed cron here: otherwise the checks below would prove nothing.
    assert host.package("cron").is_installed
    assert host.service("cron").is_running


def test_no_mail_transport_agent_installed(host):
    for package in ("exim4-base", "exim4-daemon-light", "exim4-config", "postfix", "bsd-mailx"):
        assert not host.package(package).is_installed, package
    assert not host.exists("sendmail") and not host.file("/usr/sbin/sendmail").exists


def test_nothing_listens_on_port_25(host):
    listeners = host.check_output("ss -Hltn 'sport = :25'")
    assert listeners.strip() == "", listeners

