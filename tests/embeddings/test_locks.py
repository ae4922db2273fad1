"""RWLock: readers share it, a writer excludes everyone, timeouts give up."""

from __future__ import annotations

import threading
import time

from embeddings.locks import RWLock


def test_rwlock_excludes_writers() -> None:
    lock = RWLock()
    state = {"readers": 0, "max_readers": 0, "writer_inside": False, "violations": 0}
    guard = threading.Lock()

    def reader() -> None:
        for _ in range(200):
            with lock.read():
                with guard:
                    state["readers"] += 1
                    state["max_readers"] = max(state["max_readers"], state["readers"])
                    state["violations"] += state["writer_inside"]
                time.sleep(0.0001)
                with guard:
                    state["readers"] -= 1

    def writer() -> None:
        for _ in range(50):
            with lock.write():
                with guard:
                    state["writer_inside"] = True
                    state["violations"] += state["readers"] > 0
                time.sleep(0.0001)
                with guard:
                    state["writer_inside"] = False

    threads = [threading.Thread(target=reader) for _ in range(4)] + [
        threading.Thread(target=writer) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["violations"] == 0 and state["max_readers"] > 1
    assert lock.acquire_read(timeout=0.1)
    assert not lock.acquire_write(timeout=0.05)  # a reader holds it
    lock.release_read()
    assert lock.acquire_write(timeout=0.1)
    lock.release_write()
