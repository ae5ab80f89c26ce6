/*
id: sealtrail-windows-scheduled-task
title: Windows scheduled task created
level: medium
status: stable
tactics: [persistence, execution]
techniques: [T1053.005]
description: >
  A scheduled task was registered (Security 4698). One finding per host, account and task.
false_positives:
  - software installers and updaters registering tasks
author: sealtrail
needs: [[Security, 4698]]
*/
SELECT event_uid, ts, host, coalesce(subject_user, "user") AS user_name, NULL::VARCHAR AS src_ip,
       task_name AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM events
WHERE channel = 'Security' AND event_id = 4698
