"""Collection runs: folder, live host, disk image and whole-image acquisition.

Each run goes through one custody sequence (`session.run_sealed`): ``collection_started``,
the bundle written and sealed, ``bundle_sealed`` (or ``collection_failed``). The formats and
the trust rules these runs write by live in `sealtrail.custody`; imports run
cli -> acquisition -> custody -> collectors.
"""
