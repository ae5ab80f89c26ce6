/*
id: sealtrail-windows-service-installed
title: Windows service installed
level: low
status: stable
tactics: [persistence, privilege-escalation]
techniques: [T1543.003]
description: >
  A service was installed (System 7045, Security 4697). One finding per host and service
  name and image; the suspicious ones are also reported by
  sealtrail-windows-suspicious-service.
false_positives:
  - software installs and updates, drivers
author: sealtrail
needs: [[System, 7045], [Security, 4697]]
*/
SELECT event_uid, ts, host, coalesce(subject_user, "user") AS user_name, NULL::VARCHAR AS src_ip,
       coalesce(service_name, '') || ' ' || coalesce(service_path, '') AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE (channel = 'System' AND event_id = 7045) OR (channel = 'Security' AND event_id = 4697)
