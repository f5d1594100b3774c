# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Claims on half-made images: the round trip of the property, the watch's
verdict on other runs' images, and the keeper that refreshes this run's claim."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs import claims


class Clocks(object):
    """This host's wall clock and a monotonic clock, both moved by hand."""

    def __init__(self, wall=1000000.0):
        self.now = wall
        self.mono = 0.0

    def wall(self):
        return self.now

    def monotonic(self):
        return self.mono

    def advance(self, seconds):
        self.now += seconds
        self.mono += seconds


def half_made(status='saving', claim=None, **more):
    image = dict(id='img-1', name='golden', status=status, size=None, checksum=None, updated_at='t0')
    if claim is not None:
        image[claims.CLAIM_PROPERTY] = claim
    image.update(more)
    return image


def watch_for(clocks, stale_after=60, run_id='me.1'):
    return claims.ClaimWatch(run_id, stale_after, clock=clocks.monotonic, wall=clocks.wall)


def test_claims_round_trip_and_foreign_values_are_not_claims():
    value = claims.claim_value('abc.42', 'host-a.example', 1700000000.9)
    assert value == 'abc.42@host-a.example:1700000000'
    claim = claims.parse_claim(value)
    assert (claim.run_id, claim.host, claim.when) == ('abc.42', 'host-a.example', 1700000000)
    for other in (None, '', 'x', 'abc@host', 'abc@host:soon', '@host:1', 'abc@:1', 5):
        assert claims.parse_claim(other) is None
    assert claims.new_run_id() != claims.new_run_id()


def test_fresh_claim_is_live_however_long_it_is_watched():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    for dummy in range(10):
        image = half_made(claim=claims.claim_value('other.7', 'b', clocks.now - 5))
        assert watch.judge(image) == claims.LIVE
        clocks.advance(30)


def test_old_claim_is_stale_only_after_an_unchanged_watch():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    image = half_made(claim=claims.claim_value('other.7', 'b', clocks.now - 3600))
    assert watch.judge(image) == claims.LIVE  # first look: not yet watched
    clocks.advance(claims.CLAIM_WATCH - 1)
    assert watch.judge(image) == claims.LIVE
    clocks.advance(1)
    assert watch.judge(image) == claims.STALE


@pytest.mark.parametrize('change', [
    {claims.CLAIM_PROPERTY: 'other.7@b:5'},     # a refresh (even with a clock far behind)
    {'updated_at': 't1'},
    {'status': 'uploading'},
    {'size': 1024},
])
def test_an_image_that_changes_is_live_even_with_an_old_claim(change):
    """A writer whose clock is wrong by more than stale_after still refreshes:
    any change starts the watch again."""
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    image = half_made(claim='other.7@b:1')
    assert watch.judge(image) == claims.LIVE
    clocks.advance(claims.CLAIM_WATCH + 1)
    image.update(change)
    assert watch.judge(image) == claims.LIVE
    clocks.advance(claims.CLAIM_WATCH - 1)
    assert watch.judge(image) == claims.LIVE
    clocks.advance(1)
    assert watch.judge(image) == claims.STALE


def test_a_claim_given_up_needs_only_the_watch():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=100000)
    image = half_made(status='queued', claim=claims.claim_value('other.7', 'b', 0))
    assert watch.judge(image) == claims.LIVE
    clocks.advance(claims.CLAIM_WATCH)
    assert watch.judge(image) == claims.STALE
    assert 'which gave it up' in watch.describe(image)


def test_an_import_is_never_stale():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=0)
    for image in (half_made(status='importing', claim='other.7@b:1'),
                  half_made(status='uploading', claim='other.7@b:1', os_glance_importing_to_stores='slow')):
        watch.judge(image)
        clocks.advance(10 * claims.CLAIM_WATCH)
        assert watch.judge(image) == claims.LIVE


def test_an_unclaimed_image_is_never_stale_only_stuck():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    image = half_made(status='queued')
    assert watch.judge(image) == claims.FOREIGN
    clocks.advance(59)
    assert watch.judge(image) == claims.FOREIGN
    clocks.advance(1)
    assert watch.judge(image) == claims.STUCK
    assert 'no osimage_glance_claim property: not made by this module' in watch.describe(image)


def test_own_claim_and_finished_images():
    clocks = Clocks()
    watch = watch_for(clocks, run_id='me.1')
    assert watch.judge(half_made(claim='me.1@a:1')) == claims.MINE
    assert watch.judge(half_made(status='active', claim='other.7@b:1')) == claims.DONE
    assert watch.judge(None) == claims.DONE


def test_claim_keeper_refreshes_until_stopped_and_survives_refusals():
    sent = []
    ticks = threading.Semaphore(0)

    def patch(ops):
        sent.append(ops)
        ticks.release()
        if len(sent) == 1:
            raise errors.ServiceUnavailableError('Glance is busy')

    keeper = claims.ClaimKeeper(patch, 'me.1', 'host-a', interval=0.01, wall=lambda: 1234.5).start()
    assert ticks.acquire(timeout=5) and ticks.acquire(timeout=5)
    keeper.stop()
    count = len(sent)
    time.sleep(0.05)
    assert len(sent) == count  # stopped means stopped
    assert sent[1] == [dict(op='add', path='/' + claims.CLAIM_PROPERTY, value='me.1@host-a:1234')]
    assert keeper.last_error == 'Glance is busy' and keeper.refreshed >= 1


def test_claim_keeper_ends_when_the_image_is_gone():
    sent = []

    def patch(ops):
        sent.append(ops)
        raise errors.NotFoundError('gone', status_code=404)

    keeper = claims.ClaimKeeper(patch, 'me.1', 'h', interval=0.01).start()
    keeper._thread.join(5)
    assert not keeper._thread.is_alive() and len(sent) == 1
    keeper.stop()
