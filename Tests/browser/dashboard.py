#!/usr/bin/env python3
"""The operator's pages (/ui/) in headless Chromium, as an operator uses them.

Usage: dashboard.py PARAMS.json. PARAMS names the server (base, token), the jobs already there
(ids.bad: failed on a corrupt source at `bad`; ids.xss: a finished lecture whose title is markup),
a good clip to fix the source with, the worker `w1` (its pid; its runs of sources named *stuck*
hang), what a second worker is started with, and the folder for screenshots. Prints one JSON
object of what it saw; exits non-zero when a step does not happen in time.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import chromium  # noqa: E402

p = json.load(open(sys.argv[1]))
seen = {}


def click(find, what):
    """Clicks what `find` returns, finding it again if the page's live fragment replaced it meanwhile
    (a stale element is never clicked, so trying again cannot click twice)."""
    wait(lambda: find().click() or True, what, 30)


def wait(cond, what, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        try:
            v = cond()
            if v:
                return v
        except Exception:  # the live fragment may replace an element while it is read
            pass
        time.sleep(0.2)
    print(json.dumps(seen))
    raise SystemExit(f"timed out ({seconds} s): {what}")


def api(method, path, body=None):
    req = urllib.request.Request(p["base"] + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Bearer " + p["token"], "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))


d = chromium()
d.set_window_size(1000, 860)
shots = p["shots"]
os.makedirs(shots, exist_ok=True)


def shot(name):
    d.save_screenshot(os.path.join(shots, name + ".png"))


def worker_row(name):
    rows = [r for r in d.find_elements(By.CSS_SELECTOR, "#workers tr.worker") if r.get_attribute("data-name") == name]
    return rows[0] if rows else None


second = None
try:
    # Log in with the API token.
    d.get(p["base"] + "/ui/")
    wait(lambda: d.current_url.endswith("/ui/login"), "the login form")
    shot("login")
    d.find_element(By.NAME, "token").send_keys(p["token"])
    d.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait(lambda: d.find_elements(By.ID, "jobs"), "the jobs page")

    # The failure comes first, with its reason; markup in a title is text.
    # Each read is one wait(): the live fragment may replace a row between finding and reading it.
    def first_row():
        r = d.find_elements(By.CSS_SELECTOR, "#jobs tr.job")[0]
        return {"id": r.get_attribute("data-id"), "state": r.get_attribute("data-state"), "text": r.text}
    seen["first"] = wait(first_row, "a job row")
    seen["titleAsText"] = wait(lambda: ["<script>alert(1)</script>" in d.find_element(By.ID, "jobs").text], "the jobs table")[0]
    try:
        d.switch_to.alert
        seen["alert"] = True
    except NoAlertPresentException:
        seen["alert"] = False
    shot("jobs")
    # On a phone: the page fits the screen's width.
    d.set_window_size(390, 844)
    time.sleep(0.5)
    seen["phoneFits"] = d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot("jobs-phone")
    d.set_window_size(1000, 860)

    # Fix the source, retry, and watch the job succeed on the page without a reload.
    shutil.copyfile(p["good"], p["bad"])
    click(lambda: d.find_element(By.CSS_SELECTOR, f'#jobs tr[data-id="{p["ids"]["bad"]}"] a'), "the failed job's link")
    wait(lambda: d.find_elements(By.ID, "retry"), "the retry button")
    d.execute_script("window.oldPage = 1")
    click(lambda: d.find_element(By.ID, "retry"), "the retry button")
    # The form's answer is a new page: wait for it (not the old one still on screen) before marking it.
    wait(lambda: d.execute_script("return window.oldPage") is None and d.find_elements(By.ID, "runs"), "the job page after retry")
    d.execute_script("window.stayed = 1")
    states = set()
    wait(lambda: states.add(d.find_element(By.ID, "state").text.split(" ")[0]) or "succeeded" in states, "the retried job to succeed", 120)
    seen["retry"] = {"states": sorted(states), "noReload": d.execute_script("return window.stayed") == 1,
                     "runs": len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr"))}
    shot("job")

    # The finished lecture as a learner gets it.
    click(lambda: d.find_element(By.ID, "preview"), "the preview link")
    wait(lambda: d.find_elements(By.ID, "player"), "the lecture page")
    played = wait(lambda: d.execute_script(
        "var v = document.getElementById('player'); v.muted = true; v.play(); return v.currentTime > 1 ? v.currentTime : 0"),
        "the lecture to play", 45)
    seen["lecture"] = {"played": played, "chapters": len(d.find_elements(By.CSS_SELECTOR, "#chapters figure")),
                       "renditions": len(d.find_elements(By.CSS_SELECTOR, "#renditions tbody tr")),
                       "masters": len(d.find_elements(By.CSS_SELECTOR, "#master option"))}
    shot("lecture")

    # Cancel a running job from its page; its worker lets go of it.
    stuck1 = api("POST", "/v1/jobs", {"source": p["stuck"][0], "courseId": "c1", "lectureId": "stuck-one", "preset": "minimal"})["id"]
    d.get(p["base"] + "/ui/jobs/" + stuck1)
    wait(lambda: "running" in d.find_element(By.ID, "state").text, "the job to run")
    d.execute_script("window.oldPage = 1")
    click(lambda: d.find_element(By.ID, "cancel"), "the cancel button")
    wait(lambda: d.execute_script("return window.oldPage") is None and d.find_elements(By.ID, "state"), "the job page after cancel")
    d.execute_script("window.stayed = 1")
    wait(lambda: "cancelled" in d.find_element(By.ID, "state").text, "the job to be cancelled")
    seen["cancel"] = {"noReload": d.execute_script("return window.stayed") == 1}
    d.get(p["base"] + "/ui/workers")
    wait(lambda: d.find_elements(By.ID, "workers") and all(stuck1 not in r.text for r in d.find_elements(By.CSS_SELECTOR, "#workers tr.worker")),
         "the worker to let go of the cancelled job")
    seen["cancel"]["workerFree"] = True
    if not p["worker"]:  # the server runs the jobs itself (SQLite): no worker process to kill
        shot("workers")

    # kill -9 the worker holding a job: the page marks it gone, the job runs again elsewhere.
    if p["worker"]:
        stuck2 = api("POST", "/v1/jobs", {"source": p["stuck"][1], "courseId": "c1", "lectureId": "stuck-two", "preset": "minimal"})["id"]
        wait(lambda: stuck2 in worker_row("w1").text, "w1 to hold the second job")
        os.kill(p["w1"], signal.SIGKILL)
        second = subprocess.Popen(p["second"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait(lambda: worker_row("w1").get_attribute("data-state") == "lost", "w1 to be marked lost", 60)
        wait(lambda: worker_row("w2") is not None, "w2 on the page")
        shot("workers")
        done = wait(lambda: (j := api("GET", "/v1/jobs/" + stuck2))["state"] in ("succeeded", "failed") and j, "the job to run again", 120)
        # Read through wait(): the live fragment may replace the row between finding and reading it.
        seen["kill"] = {"w1": wait(lambda: worker_row("w1").text, "w1's row"), "state": done["state"], "attempts": done["attempts"]}
finally:
    if second is not None:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
    d.quit()
print(json.dumps(seen))
