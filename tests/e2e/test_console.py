"""The web console (issue 19) in real headless Chromium (Debian's chromium and chromedriver,
driven by Selenium): sign in with an access key; the overview shows a record provisioned through
boto3 and a stuck one; the record page shows the outputs and the built-in engine's log of the
run, and follows a running record's log live; an admin fails a stuck record from its page and
boto3 sees it FAILED; a form without its CSRF token is refused; a wrong secret is refused;
another account's key sees none of it. Screenshots of each page go to
target/e2e-output/console/.

Without chromium and chromedriver the tests are skipped with a loud message, except under
CI=true, where they fail (scripts/test.sh installs both)."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import ROOT, Server
from test_engine_terraform import TERRAFORM, publish_in, tar_gz, wait_record
from test_objects import s3_client
from test_proton import MAIN_TF as PROTON_MAIN_TF, MANIFEST, SCHEMA, git

REPOSITORY = "acme/envs"

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = ROOT / "target" / "e2e-output" / "console"

missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
if TERRAFORM is None:
    missing.append("terraform")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    missing.append("the selenium Python package")
if missing:
    message = ("\n" + "!" * 78 + f"\nconsole browser tests SKIPPED: {', '.join(map(str, missing))} not found.\n"
               "scripts/test.sh installs Debian's chromium and chromium-driver.\n" + "!" * 78)
    if os.environ.get("CI") == "true":
        raise RuntimeError(message)
    print(message, file=sys.stderr)
    pytestmark = pytest.mark.skip(reason="chromium, chromedriver or terraform is missing (see above)")


def chromium(width=1280, height=900):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='console-chromium-')}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The whole page: as tall as its content.
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(max(width, 390), 600)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(max(width, 390), min(max(height + 120, 600), 4000))
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def sign_in(driver, server, key, secret=None):
    driver.get(server.endpoint + "/console/")
    assert driver.current_url.endswith("/console/sign-in"), "without a session the console asks to sign in"
    driver.find_element(By.NAME, "access_key_id").send_keys(key.access_key_id)
    driver.find_element(By.NAME, "secret_access_key").send_keys(secret or key.secret)
    driver.find_element(By.CSS_SELECTOR, "form.sign-in button").click()


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def wait_for(driver, condition, timeout=20):
    """Polls `condition` until it holds. A click that submits a form navigates while the
    condition reads the page: an element found on the old page goes stale, or is not there yet
    on the new one; both mean "not yet", and the next poll reads the new page."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
                         ).until(lambda d: condition(d))


def publish_external(sc, key, tmp_path):
    """An EXTERNAL product (no engine on this server polls its queues): its records stay in
    progress until someone settles them."""
    archive = tmp_path / "external.tar.gz"
    archive.write_bytes(tar_gz({"main.tf": 'variable "name" {\n  type = string\n}\n'}))
    product = sc.create_product(Name="external", Owner="platform", ProductType="EXTERNAL",
                                ProvisioningArtifactParameters={"Name": "v1", "Info": {"LoadTemplateFromURL": f"file://{archive}"}})
    pid = product["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    pa = product["ProvisioningArtifactDetail"]["Id"]
    port = sc.create_portfolio(DisplayName="External", ProviderName="p")["PortfolioDetail"]["Id"]
    sc.associate_product_with_portfolio(ProductId=pid, PortfolioId=port)
    sc.associate_principal_with_portfolio(PortfolioId=port, PrincipalARN=key.principal, PrincipalType="IAM")
    sc.create_constraint(PortfolioId=port, ProductId=pid, Type="LAUNCH",
                         Parameters=json.dumps({"RoleArn": f"arn:aws:iam::{key.account}:role/LaunchRole"}))
    return pid, pa


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    repo = tmp / "envs.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True)
    s = Server(tmp / "data", args=["--engine", "terraform", "--terraform", TERRAFORM or "terraform",
                                   "--stuck-after", "1s", "--git-repository", f"{REPOSITORY}={repo}"])
    s.repo = repo
    account = "222233334444"
    admin = s.create_key(account, f"arn:aws:iam::{account}:role/platform", admin=True)
    sc, pid, pa = publish_in(s, admin, tmp)
    done = sc.provision_product(ProductId=pid, ProvisioningArtifactId=pa, ProvisionedProductName="hello",
                                ProvisioningParameters=[{"Key": "name", "Value": "<b>world</b>"},
                                                        {"Key": "size", "Value": "2"}])["RecordDetail"]
    finished = wait_record(sc, done["RecordId"])
    assert finished["RecordDetail"]["Status"] == "SUCCEEDED", finished["RecordDetail"].get("RecordErrors")
    xpid, xpa = publish_external(sc, admin, tmp)
    stuck = [sc.provision_product(ProductId=xpid, ProvisioningArtifactId=xpa, ProvisionedProductName=f"stuck-{i}",
                                  ProvisioningParameters=[{"Key": "name", "Value": f"n{i}"}])["RecordDetail"]
             for i in range(2)]
    other = s.create_key("555566667777", "arn:aws:iam::555566667777:role/platform", admin=True)
    developer = s.create_key(account, f"arn:aws:iam::{account}:role/developer")
    driver = chromium()
    yield {"server": s, "sc": sc, "admin": admin, "other": other, "developer": developer, "done": done,
           "stuck": stuck, "driver": driver, "product": pid, "tmp": tmp}
    driver.quit()
    s.stop()


def test_a_wrong_secret_is_refused(world):
    s, driver = world["server"], world["driver"]
    driver.delete_all_cookies()
    sign_in(driver, s, world["admin"], secret="not-the-secret-at-all")
    # The refusal is the sign-in page again, at the same address: wait for its error, not for
    # the address, which the page being left already has.
    wait_for(driver, lambda d: "do not sign in" in text(d, "p.error"))
    assert driver.current_url.endswith("/console/sign-in")
    assert driver.get_cookies() == [], "no session for a wrong secret"
    shot(driver, "sign-in-refused")


def test_the_overview_and_record_page_show_what_boto3_provisioned(world):
    s, driver, done = world["server"], world["driver"], world["done"]
    driver.delete_all_cookies()
    sign_in(driver, s, world["admin"])
    wait_for(driver, lambda d: d.current_url.endswith("/console/"))
    cookie = next(c for c in driver.get_cookies() if c["name"] == "provisiond-console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie.get("expiry")
    assert "AVAILABLE" in text(driver, "#products-by-status")
    time.sleep(1.2)  # past --stuck-after
    driver.refresh()
    in_progress = text(driver, "#in-progress")
    for record in world["stuck"]:
        assert record["RecordId"] in in_progress
    assert "stuck" in in_progress and "waiting for an engine" in in_progress
    assert "ServiceCatalogExternalProvisionOperationQueue" in text(driver, "#queues")
    assert "polling" in text(driver, "#engine")
    shot(driver, "overview")

    driver.find_element(By.LINK_TEXT, "Records").click()
    assert done["RecordId"] in text(driver, "#records")
    driver.find_element(By.LINK_TEXT, done["RecordId"]).click()
    wait_for(driver, lambda d: d.current_url.endswith(f"/console/records/{done['RecordId']}"))
    assert "SUCCEEDED" in text(driver, "#record-status")
    outputs = text(driver, "#outputs")
    assert "hello <b>world</b>" in outputs, "an output shows as text, not markup"
    assert "(sensitive value)" in outputs
    assert driver.find_elements(By.CSS_SELECTOR, "#outputs b") == []
    log = text(driver, "#engine-log")
    assert "Apply complete!" in log, log[-2000:]
    assert "Notified and settled: SUCCEEDED" in text(driver, "#timeline")
    shot(driver, "record")
    driver.set_window_size(390, 844)
    driver.refresh()
    shot(driver, "record-phone")
    driver.set_window_size(1280, 900)

    # The events endpoint of a settled record sends the log and ends.
    status, body = get(s, f"/console/records/{done['RecordId']}/events?from=0", driver)
    assert status == 200 and "Apply complete!" in body and "event: end" in body


def get(server, path, driver, data=None):
    """A request with the browser's session cookie: (status, body)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(server.endpoint + path, data=data, headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_running_records_log_is_followed_live_and_an_admin_fails_it(world):
    s, driver, sc = world["server"], world["driver"], world["sc"]
    record = world["stuck"][0]
    driver.get(f"{s.endpoint}/console/records/{record['RecordId']}")
    if driver.current_url.endswith("/sign-in"):
        sign_in(driver, s, world["admin"])
        driver.get(f"{s.endpoint}/console/records/{record['RecordId']}")
    assert driver.find_elements(By.ID, "no-log"), "no engine ran it, so there is no log yet"
    # An engine's log appears and grows while the page is open.
    log = s.data_dir / "engine" / "logs" / f"{record['RecordId']}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("first line\n")
    driver.refresh()
    wait_for(driver, lambda d: "following live" in text(d, "#log-state"))
    with log.open("a") as f:
        f.write("second line <i>not markup</i>\n")
    wait_for(driver, lambda d: "second line <i>not markup</i>" in text(d, "#engine-log"))
    assert driver.find_elements(By.CSS_SELECTOR, "#engine-log i") == []
    shot(driver, "record-live-log")

    form = driver.find_element(By.ID, "fail-form")
    form.find_element(By.NAME, "reason").send_keys("the engine host was lost")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(driver, lambda d: "FAILED" in text(d, "#record-status"))
    assert "was failed" in text(driver, "p.notice")
    detail = sc.describe_record(Id=record["RecordId"])["RecordDetail"]
    assert detail["Status"] == "FAILED"
    assert {"Code": "ENGINE_WORKFLOW_FAILURE", "Description": "the engine host was lost"} in detail["RecordErrors"]
    assert driver.find_elements(By.ID, "fail-form") == [], "a settled record has no actions"
    shot(driver, "record-failed")
    entries = s.admin_command("audit", "--operation", "record-fail")
    assert [(e["Service"], e["Principal"], e["AccessKeyId"], e["Resources"][0]) for e in entries] == \
        [("console", world["admin"].principal, world["admin"].access_key_id, f"record/{record['RecordId']}")]


def test_an_action_without_its_csrf_token_is_refused(world):
    s, driver, sc = world["server"], world["driver"], world["sc"]
    record = world["stuck"][1]
    driver.get(f"{s.endpoint}/console/records/{record['RecordId']}")
    if driver.current_url.endswith("/sign-in"):
        sign_in(driver, s, world["admin"])
        driver.get(f"{s.endpoint}/console/records/{record['RecordId']}")
    # The browser posts the form with its token removed.
    driver.execute_script("document.querySelector('#fail-form input[name=csrf]').remove()")
    form = driver.find_element(By.ID, "fail-form")
    form.find_element(By.NAME, "reason").send_keys("forged")
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(driver, lambda d: "CSRF token is missing or wrong" in d.page_source)
    shot(driver, "csrf-refused")
    # And a request with the session cookie but a wrong token, or another origin.
    body = urllib.parse.urlencode({"reason": "forged", "csrf": "0" * 64}).encode()
    status, _ = get(s, f"/console/records/{record['RecordId']}/fail", driver, data=body)
    assert status == 403
    assert sc.describe_record(Id=record["RecordId"])["RecordDetail"]["Status"] == "IN_PROGRESS"


def signed_in(world, key=None):
    """The browser, signed in with `key` (the account's admin key by default)."""
    s, driver = world["server"], world["driver"]
    key = key or world["admin"]
    driver.delete_all_cookies()
    sign_in(driver, s, key)
    wait_for(driver, lambda d: d.current_url.endswith("/console/"))
    return driver


def test_the_provisioned_product_and_portfolio_pages(world):
    s, done = world["server"], world["done"]
    driver = signed_in(world)
    driver.get(f"{s.endpoint}/console/records/{done['RecordId']}")
    driver.find_element(By.LINK_TEXT, "hello").click()
    wait_for(driver, lambda d: f"/console/provisioned-products/{done['ProvisionedProductId']}" in d.current_url)
    assert "AVAILABLE" in text(driver, "#provisioned-product")
    assert done["RecordId"] in text(driver, "#last-successful")
    assert "hello <b>world</b>" in text(driver, "#current-outputs")
    assert done["RecordId"] in text(driver, "#records")
    shot(driver, "provisioned-product")

    driver.find_element(By.LINK_TEXT, "Portfolios").click()
    page = text(driver, "main")
    assert "greeter" in page and "external" in page and "v1" in page
    assert world["admin"].principal in page, "who may launch it"
    shot(driver, "portfolios")
    # A key that does not administer the account sees what it may launch: nothing here.
    driver = signed_in(world, world["developer"])
    driver.get(f"{s.endpoint}/console/portfolios")
    assert "greeter" not in text(driver, "main")
    assert driver.find_elements(By.LINK_TEXT, "Audit") == [], "the audit log is for admin keys"
    driver.get(f"{s.endpoint}/console/audit")
    assert "AccessDeniedException" in text(driver, "main")


def test_a_dead_lettered_task_is_redriven_from_the_console_and_settled(world):
    s, sc = world["server"], world["sc"]
    record = world["stuck"][1]
    sqs = s.client("sqs", world["admin"])
    url = sqs.get_queue_url(QueueName="ServiceCatalogExternalProvisionOperationQueue")["QueueUrl"]
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
        assert [json.loads(m["Body"])["recordId"] for m in got] == [record["RecordId"]]
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == [], "dead-lettered"
    driver = signed_in(world)
    driver.find_element(By.LINK_TEXT, "Dead letters").click()
    table = text(driver, "table.dead-letters")
    assert record["RecordId"] in table and "PROVISION_PRODUCT" in table
    token_free = driver.page_source
    shot(driver, "dead-letters")
    driver.find_element(By.CSS_SELECTOR, "form.redrive button").click()
    wait_for(driver, lambda d: "Redriven" in text(d, "main"))
    assert driver.find_elements(By.ID, "no-dead-letters")
    task = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"])
    assert task["recordId"] == record["RecordId"] and task["token"] not in token_free
    s.client("servicecatalog", world["admin"]).notify_provision_product_engine_workflow_result(
        WorkflowToken=task["token"], RecordId=task["recordId"], Status="SUCCEEDED", IdempotencyToken="redriven")
    assert sc.describe_record(Id=record["RecordId"])["RecordDetail"]["Status"] == "SUCCEEDED"

    driver.find_element(By.LINK_TEXT, "Audit").click()
    audit = text(driver, "#audit")
    assert "StartMessageMoveTask" in audit and "record-fail" in audit and "console" in audit
    assert "NotifyProvisionProductEngineWorkflowResult" in audit
    shot(driver, "audit")
    driver.get(f"{s.endpoint}/console/audit?operation=record-fail")
    assert "StartMessageMoveTask" not in text(driver, "#audit")


def test_the_proton_page_shows_deployments_and_their_git_commits(world):
    s, admin = world["server"], world["admin"]
    proton = s.client("proton", admin)
    s3 = s3_client(s, admin)
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="vpc.tar.gz", Body=tar_gz({
        "infrastructure/manifest.yaml": MANIFEST, "infrastructure/main.tf": PROTON_MAIN_TF,
        "schema/schema.yaml": SCHEMA}))
    proton.create_environment_template(name="vpc")
    proton.create_environment_template_version(templateName="vpc", source={"s3": {"bucket": "templates", "key": "vpc.tar.gz"}})
    proton.update_environment_template_version(templateName="vpc", majorVersion="1", minorVersion="0", status="PUBLISHED")
    proton.create_repository(provider="GITHUB", name=REPOSITORY,
                             connectionArn=f"arn:aws:codestar-connections:us-east-1:{admin.account}:connection/c")
    env = proton.create_environment(
        name="staging", templateName="vpc", templateMajorVersion="1",
        spec="proton: EnvironmentSpec\nspec:\n  size: 2\n",
        provisioningRepository={"provider": "GITHUB", "name": REPOSITORY, "branch": "main"})["environment"]
    commit = git(s.repo, "log", "--format=%H", "-1", "main").strip()
    driver = signed_in(world)
    driver.find_element(By.LINK_TEXT, "Proton").click()
    section = text(driver, "section.proton-resource")
    assert "staging" in section and env["lastAttemptedDeploymentId"] in section
    assert commit[:12] in section and REPOSITORY in section
    code = driver.find_element(By.CSS_SELECTOR, "table.deployments code")
    assert code.get_attribute("title") == commit
    shot(driver, "proton")


def test_another_accounts_key_sees_none_of_it(world):
    s, driver = world["server"], world["driver"]
    done = world["done"]
    driver.delete_all_cookies()
    sign_in(driver, s, world["other"])
    wait_for(driver, lambda d: d.current_url.endswith("/console/"))
    page = driver.page_source
    assert "None yet." in page and "0 in progress" in page
    for record in [done, *world["stuck"]]:
        assert record["RecordId"] not in page
    driver.get(f"{s.endpoint}/console/records")
    assert driver.find_elements(By.ID, "no-records")
    driver.get(f"{s.endpoint}/console/records/{done['RecordId']}")
    assert "not found" in driver.page_source.lower() and "hello" not in text(driver, "main")
    status, body = get(s, f"/console/records/{done['RecordId']}/events?from=0", driver)
    assert status == 404 and "Apply complete" not in body
    shot(driver, "other-account")

    # Signing out ends the session on the server: the old cookie no longer reads anything.
    old = [dict(c) for c in driver.get_cookies()]
    driver.get(f"{s.endpoint}/console/")
    driver.find_element(By.CSS_SELECTOR, ".who form button").click()
    wait_for(driver, lambda d: d.current_url.endswith("/console/sign-in"))
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in old)
    request = urllib.request.Request(s.endpoint + "/console/", headers={"Cookie": cookie})
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(request, timeout=10)
    assert e.value.code == 303 and e.value.headers["Location"] == "/console/sign-in"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
