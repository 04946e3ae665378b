#!/usr/bin/python3
"""test_console.py - the web console in a real browser (headless Chromium from
Debian, driven by chromedriver through Debian's python3-selenium): a fleet
started with saga-fleet, the console opened from the gateway, stock set and an
order placed through the page's forms and seen CONFIRMED live; then
`payment decline_rate=1` injected from the page, another order placed, and
its timeline found CANCELLED with the decline and the release of its stock
(a compensation) on it. Screenshots go to --out.

Exit 77 (CTest's skip) when Chromium is not installed; any other missing
piece (chromedriver, selenium) is a failure, since deploy/setup installs them.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SKIP = 77
WAIT_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """A fleet in a temporary home, on a free NATS port and a free gateway port."""

    def __init__(self, build):
        self.exe = os.path.join(build, "tools", "saga-fleet")
        self.home = tempfile.mkdtemp(prefix="saga-browser-")
        self.env = dict(os.environ, SAGA_HOME=self.home, SAGA_BUILD_DIR=build,
                        SAGA_NATS_URL=f"nats://127.0.0.1:{free_port()}",
                        SAGA_GATEWAY_ADDR="127.0.0.1:0")
        self.env.pop("SAGA_REPLICAS", None)

    def run(self, *args):
        return subprocess.run([self.exe, *args], env=self.env, capture_output=True, text=True,
                              timeout=120)

    def up(self):
        r = self.run("up")
        if r.returncode != 0:
            raise RuntimeError(f"saga-fleet up failed:\n{r.stdout}\n{r.stderr}")
        status = json.loads(self.run("status", "--json").stdout)
        return next(p["url"] for p in status["processes"] if p["name"] == "gateway")

    def down(self):
        self.run("down")
        shutil.rmtree(self.home, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="the build tree")
    ap.add_argument("--out", required=True, help="where the screenshots go")
    args = ap.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"skipped: no {CHROMIUM} (deploy/setup installs chromium)")
        return SKIP
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import Select, WebDriverWait

    os.makedirs(args.out, exist_ok=True)
    fleet = Fleet(args.build)
    driver = None
    try:
        url = fleet.up()
        print(f"console at {url}")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1400,1500"):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        # The page redraws its live parts (fleet, orders, timeline) as events come: an
        # element found a moment ago may be gone. Every look and action is retried
        # until it works on the page as it is now, within the deadline.
        wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
        find = driver.find_element

        def steady(action):
            """The result of action(), run again while the element it used went stale."""
            box = []
            wait.until(lambda d: box.append(action()) or True)
            return box[-1]

        def text_of(css):
            els = driver.find_elements(By.CSS_SELECTOR, css)
            return els[0].text if els else ""

        def fill(id_, value):
            def act():
                e = find(By.ID, id_)
                e.clear()
                e.send_keys(value)
            steady(act)

        def click(id_):
            steady(lambda: find(By.ID, id_).click())

        def order_id():
            return steady(lambda: find(By.ID, "place-result").get_attribute("data-order-id"))

        def place():
            before = order_id()
            click("place-submit")
            wait.until(lambda d: find(By.ID, "place-result").get_attribute("data-order-id")
                       not in (None, before))
            return order_id()

        driver.get(url)
        wait.until(lambda d: text_of("#live") == "live")
        wait.until(lambda d: text_of("#fleet-payment td:nth-child(3)") == "up")

        # Stock through the page, then an order that goes through.
        fill("stock-sku", "A1")
        fill("stock-qty", "100")
        click("stock-set")
        wait.until(lambda d: text_of("#stock-A1 td:nth-child(2)") == "100")
        first = place()
        wait.until(lambda d: text_of(f"#order-{first} .state") == "CONFIRMED")
        print(f"order {first}: CONFIRMED")
        driver.save_screenshot(os.path.join(args.out, "console-confirmed.png"))

        # Every payment declined, from the page's fault form.
        wait.until(lambda d: "payment" in [o.text for o in
                                           Select(find(By.ID, "fault-service")).options])
        steady(lambda: Select(find(By.ID, "fault-service")).select_by_value("payment"))
        fill("fault-spec", "decline_rate=1")
        click("fault-apply")
        wait.until(lambda d: "decline_rate=1" in text_of("#fault-result"))
        wait.until(lambda d: "decline_rate=1" in text_of("#fleet-payment td:nth-child(8)"))

        second = place()
        wait.until(lambda d: text_of(f"#order-{second} .state") == "CANCELLED")
        # Its timeline: the decline (a failure) and the stock's release (a compensation),
        # each on its participant's lane.
        wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, '#timeline-list li.COMPENSATION[data-type="inventory.released"]'))
        assert driver.find_elements(
            By.CSS_SELECTOR, '#timeline-list li.FAILURE[data-type="payment.declined"]'), \
            "no payment.declined failure on the timeline"
        assert driver.find_elements(
            By.CSS_SELECTOR, '#lane-inventory .mark.comp[data-type="inventory.released"]'), \
            "no compensation mark on the inventory lane"
        assert driver.find_elements(
            By.CSS_SELECTOR, '#lane-payment .mark.fail[data-type="payment.declined"]'), \
            "no failure mark on the payment lane"
        lanes = steady(lambda: [e.get_attribute("id")
                                for e in driver.find_elements(By.CSS_SELECTOR, ".lane")])
        for name in ("order", "payment", "inventory", "shipping", "notification", "history"):
            assert f"lane-{name}" in lanes, f"no lane for {name}: {lanes}"
        print(f"order {second}: CANCELLED, inventory.released on its timeline")
        driver.save_screenshot(os.path.join(args.out, "console-compensated.png"))
        print(f"screenshots in {args.out}")
        return 0
    except Exception as e:  # the test's verdict, with what the page showed
        if driver is not None:
            driver.save_screenshot(os.path.join(args.out, "console-failed.png"))
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if driver is not None:
            driver.quit()
        fleet.down()


if __name__ == "__main__":
    sys.exit(main())
