/*
id: sealtrail-config-world-writable
title: World-writable cron or systemd unit file
level: high
status: stable
kind: config
tactics: [persistence, privilege-escalation]
techniques: [T1053.003, T1543.002]
description: >
  A collected cron file (/etc/crontab, /etc/cron.d, /etc/cron.hourly, daily, weekly, monthly,
  /var/spool/cron) or systemd unit file (under a systemd/system or systemd/user folder) that
  any account may write (the other-write bit of the mode the bundle's manifest recorded): any
  local user can make root run a command. Symbolic links are not looked at. One finding per
  file; the evidence is the file itself (no line).
false_positives:
  - none known; a mode set by a careless install script is still a weakness
author: sealtrail
*/
SELECT NULL::VARCHAR AS event_uid, NULL::TIMESTAMPTZ AS ts, host, NULL::VARCHAR AS user_name,
       NULL::VARCHAR AS src_ip, member_path AS group_key, bundle_id, member_path,
       NULL::BIGINT AS line_no
FROM artifacts
WHERE kind = 'file' AND regexp_matches(mode, '^[0-7]+$')
  AND right(mode, 1) IN ('2', '3', '6', '7')
  AND (regexp_matches(member_path, '^/etc/(crontab|cron\.(d|hourly|daily|weekly|monthly)/)')
       OR member_path LIKE '/var/spool/cron/%'
       OR regexp_matches(member_path, '/systemd/(system|user)(\.control)?/[^/]+$'))
