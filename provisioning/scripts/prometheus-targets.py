#!/usr/bin/env python3
"""Every Prometheus scrape target up, judged on scrapes made after this check began (a target's
state from before a repair, or a Prometheus that has not scraped yet, says nothing).

  prometheus-targets.py SECONDS PORT     exit 0: all up; otherwise the problem, after at most SECONDS

Stdlib only (verify.sh runs it on the head)."""
import calendar, json, re, sys, time, urllib.request

def epoch(stamp):  # "2026-11-25T18:09:58.123456789Z" (Python 3.10's fromisoformat takes no "Z")
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", stamp or "")
    if not m:
        return 0.0
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)

start = time.time()
deadline = start + float(sys.argv[1])
while True:
    try:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[2]}/api/v1/targets", timeout=5))["data"]["activeTargets"]
        fresh = bool(targets) and all(epoch(t.get("lastScrape")) >= start for t in targets)
        down = [f"{t['labels'].get('job')}@{t['labels'].get('node', t['labels'].get('instance'))}: {t.get('lastError') or t['health']}" for t in targets if t["health"] != "up"]
        problem = None if fresh and not down else ("down: " + "; ".join(down) if down else "no fresh scrape of every target yet")
    except Exception as e:
        fresh, problem = False, f"Prometheus does not answer on :{sys.argv[2]}: {e}"
    if problem is None:
        sys.exit(0)
    if (fresh and down) or time.time() > deadline:
        sys.exit(problem)
    time.sleep(1)
