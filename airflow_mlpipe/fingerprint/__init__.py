"""Content hashing and file identities: what reuse keys and dataset manifests are made of. No Airflow import.

- ``hashing``: ``hash_bytes``, ``hash_file``, ``hash_files`` (XXH3-128; batches over worker processes; stat cache).
- ``identity``: ``FileIdentity`` and ``identities`` (a hash the store keeps, else our content hash).
- ``tree``: ``Tree``, ``TreeEntry``, ``TreeDiff``, ``diff`` and ``scan_tree`` (source snapshots).
- ``hash_paths``: ``scan_hash_paths`` (a step's extra ``hash_paths``).
- ``statcache``: ``StatCache`` and ``default_stat_cache`` (digests of unchanged local files, by exact stat).
- The rest (``scan``, ``walk``, ``ignore``, ``local``, ``batch``, ``pool``, ``cachedb``) is how those work.
"""
