/*
id: sealtrail-authorized-keys-modified
title: authorized_keys file modified
level: low
status: stable
tactics: [persistence]
techniques: [T1098.004]
description: >
  The modification time of an SSH authorized_keys file, as the bundle's manifest recorded
  it: when keys were last changed. One finding per file; use it to date key changes
  against the timeline.
false_positives:
  - every legitimate key change
author: sealtrail
sources: [manifest_fs]
*/
SELECT event_uid, ts, host, NULL::VARCHAR AS user_name, NULL::VARCHAR AS src_ip,
       path AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'file_modified' AND regexp_matches(path, '/\.ssh/authorized_keys2?$')
