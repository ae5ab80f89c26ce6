/*
id: sealtrail-crontab-changed
title: User crontab installed or replaced
level: low
status: stable
tactics: [persistence]
techniques: [T1053.003]
description: >
  cron logged that a user's crontab was installed or replaced (crontab REPLACE in syslog or
  the journal). One finding per account.
false_positives:
  - users editing their own crontab
author: sealtrail
sources: [syslog, journald]
*/
SELECT event_uid, ts, host, coalesce(attributes->>'$.crontab_of', "user") AS user_name,
       NULL::VARCHAR AS src_ip, NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id,
       NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE event_type = 'scheduled_task_created' AND process = 'crontab'
