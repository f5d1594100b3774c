# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Ownership of half-made images, taken and judged in Glance: a claim
property on the image, a watch that judges other runs' claims, and a keeper
that refreshes this run's claim while it works.

Private to the collection; not a public API.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Callable

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors

#
# Runs on different hosts share nothing but Glance, so ownership of a half-made
# image is taken and judged there: the run that creates an image marks it with
# CLAIM_PROPERTY ("<run id>@<host>:<unix time>") and refreshes the time every
# CLAIM_REFRESH seconds until it is done. Another run judges such an image stale
# (left by a dead run) only when the claim is older than its stale_after AND the
# image has not changed at all (status, size, checksum, claim, updated_at) while
# it watched it for CLAIM_WATCH seconds, which spans more than two refreshes: a
# live writer's refresh always shows, even with clocks that disagree.

CLAIM_PROPERTY = 'osimage_glance_claim'
CLAIM_REFRESH = 10
CLAIM_WATCH = 25
# Statuses of an image whose data is not (yet) in.
BUSY = ('queued', 'saving', 'uploading', 'importing')

LIVE = 'live'          # being written: wait for it
STALE = 'stale'        # claimed by a run that is gone: may be removed
FOREIGN = 'foreign'    # not claimed (made by something else): wait, never remove
STUCK = 'stuck'        # not claimed and unchanged for stale_after: never removed, fail
DONE = 'done'          # not busy (any more), or gone
MINE = 'mine'          # claimed by this run


class Claim(object):
    """A parsed claim: who (run id and host) and when (unix time)."""

    def __init__(self, run_id: str, host: str, when: int) -> None:
        self.run_id = run_id
        self.host = host
        self.when = when

    def __str__(self) -> str:
        return 'run %s on host %s' % (self.run_id, self.host)


def new_run_id() -> str:
    """Unique per run: random, plus the pid for whoever reads it."""
    return '%s.%d' % (uuid.uuid4().hex[:12], os.getpid())


def claim_value(run_id: str, host: str, when: float) -> str:
    return '%s@%s:%d' % (run_id, host, int(when))


def parse_claim(value: Any) -> Claim | None:
    """The Claim in a property value, or None when it is not one of ours."""
    if not isinstance(value, str):
        return None
    who, sep, when = value.rpartition(':')
    run_id, at, host = who.partition('@')
    if not (sep and at and run_id and host and when.isdigit()):
        return None
    return Claim(run_id, host, int(when))


def fingerprint(image: dict) -> tuple:
    """What changes when anyone works on an image."""
    return tuple(image.get(key) for key in ('status', 'size', 'checksum', 'os_hash_value', 'updated_at',
                                            CLAIM_PROPERTY, 'os_glance_importing_to_stores'))


class ClaimWatch(object):
    """The verdict on other runs' half-made images, over repeated looks.

    ``judge(image)`` is called for each look; the verdict is one of LIVE,
    STALE, FOREIGN, STUCK, DONE and MINE (see above). ``clock`` measures how
    long an image has been watched unchanged (monotonic); ``wall`` is this
    host's time to read the age of a claim."""

    def __init__(self, run_id: str, stale_after: float, watch: float = CLAIM_WATCH,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.run_id = run_id
        self.stale_after = stale_after
        self.watch = watch
        self._clock = clock
        self._wall = wall
        self._seen = {}

    def unchanged_for(self, image: dict) -> float:
        """Seconds this image has looked the same (0 at the first look)."""
        now = self._clock()
        mark = fingerprint(image)
        seen = self._seen.get(image['id'])
        if seen is None or seen[0] != mark:
            self._seen[image['id']] = (mark, now)
            return 0.0
        return now - seen[1]

    def claim_age(self, claim: Claim) -> float:
        return self._wall() - claim.when

    def judge(self, image: dict | None) -> str:
        if image is None or image.get('status') not in BUSY:
            return DONE
        claim = parse_claim(image.get(CLAIM_PROPERTY))
        if claim is not None and claim.run_id == self.run_id:
            return MINE
        still = self.unchanged_for(image)
        if claim is None:
            return STUCK if still >= max(self.stale_after, self.watch) else FOREIGN
        if image.get('status') == 'importing' or (image.get('os_glance_importing_to_stores') or '').strip(','):
            return LIVE  # Glance's own import task does the work, whether or not the run is alive
        if self.claim_age(claim) > self.stale_after and still >= self.watch:
            return STALE
        return LIVE

    def describe(self, image: dict) -> str:
        """The image and who claims it, for messages."""
        claim = parse_claim(image.get(CLAIM_PROPERTY))
        text = 'image %s (%s' % (image['id'], image.get('status'))
        if claim is None:
            return text + ', no %s property: not made by this module)' % CLAIM_PROPERTY
        if claim.when == 0:
            return text + ', claimed by %s, which gave it up)' % claim
        return text + ', claimed by %s, refreshed %d seconds ago)' % (claim, max(0, self.claim_age(claim)))


class ClaimKeeper(object):
    """Refreshes this run's claim on one image every ``interval`` seconds in a
    daemon thread until ``stop()``; ``patch(ops)`` sends one JSON patch.

    Best effort: a refused refresh is retried at the next tick (a reader only
    takes the image for stale after an unchanged watch, so a missed tick is
    harmless); 404 (the image is gone) ends it."""

    def __init__(self, patch: Callable[[list], Any], run_id: str, host: str, interval: float = CLAIM_REFRESH,
                 wall: Callable[[], float] = time.time) -> None:
        self._patch = patch
        self.run_id = run_id
        self.host = host
        self.interval = interval
        self._wall = wall
        self._stop = threading.Event()
        self._thread = None
        self.refreshed = 0
        self.last_error = None

    def value(self) -> str:
        return claim_value(self.run_id, self.host, self._wall())

    def start(self) -> ClaimKeeper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='osimage-claim', daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self._patch([dict(op='add', path='/' + CLAIM_PROPERTY, value=self.value())])
                self.refreshed += 1
            except errors.NotFoundError:
                return
            except errors.OsimageError as exc:
                self.last_error = exc.msg

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
