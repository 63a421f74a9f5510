"""Optuna's RDBStorage whose every call survives a lost connection (:class:`RetryingRDBStorage`).

The faults, the back-off and :class:`~sweeps.core.faults.StorageOutage` are in
:mod:`sweeps.core.faults`; this module wraps the storage's methods in them.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import optuna

from sweeps.core.faults import RETRY_SECONDS, describe, is_storage_fault, retry_on_faults

log = logging.getLogger(__name__)


#: The RDBStorage methods retried on a fault: the storage API and the private ones Optuna's
#: cache (``_CachedStorage``) calls directly.
_RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
    "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param", "get_trial_param",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "get_n_trials", "_get_stale_trial_ids",
)


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls survive a lost connection (see the module docstring).

    Args:
        shown_url: the storage URL as it may be printed (password hidden).
        retry_seconds: how long a call is retried in all (:data:`RETRY_SECONDS`).
    """

    def __init__(self, url: str, *args, shown_url: str | None = None, retry_seconds: float = RETRY_SECONDS,
                 **kwargs) -> None:
        self.shown_url = shown_url or url
        self.retry_seconds = retry_seconds
        self._heartbeats_failing = False
        super().__init__(url, *args, **kwargs)

    def _retry(self, call: Callable[[], Any]) -> Any:
        return retry_on_faults(call, self.shown_url, self.retry_seconds)

    def set_trial_state_values(self, trial_id: int, state, values=None) -> bool:
        attempts = [0]

        def call():
            attempts[0] += 1
            try:
                return optuna.storages.RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A retried write whose first attempt was committed before the connection dropped.
                if attempts[0] > 1 and state.is_finished() and \
                        optuna.storages.RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return self._retry(call)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as error:  # the next beat comes in heartbeat_interval seconds
            if not is_storage_fault(error):
                raise
            if not self._heartbeats_failing:
                log.warning("heartbeats cannot be written to the Optuna storage %s (%s); trying again every "
                            "heartbeat interval", self.shown_url, describe(error))
            self._heartbeats_failing = True
        else:
            self._heartbeats_failing = False


def _retrying(name: str):
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return self._retry(lambda: method(self, *args, **kwargs))

    return call


for _name in _RETRIED:
    setattr(RetryingRDBStorage, _name, _retrying(_name))
