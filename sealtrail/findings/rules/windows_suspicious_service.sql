/*
id: sealtrail-windows-suspicious-service
title: Windows service installed with a suspicious image
level: high
status: stable
tactics: [persistence, privilege-escalation, lateral-movement]
techniques: [T1543.003, T1569.002, T1021.002]
description: >
  A service (System 7045, Security 4697) whose image runs a shell or script host (cmd /c,
  %COMSPEC%, powershell, mshta, rundll32, regsvr32), writes to a named pipe (Metasploit's
  getsystem), lives in a temporary or public folder or on an admin share, or is PsExec's
  PSEXESVC: how remote execution tools and privilege escalation install themselves.
false_positives:
  - administration tools that run PsExec; installers that wrap commands in cmd /c
author: sealtrail
needs: [[System, 7045], [Security, 4697]]
*/
SELECT event_uid, ts, host, coalesce(subject_user, "user") AS user_name, NULL::VARCHAR AS src_ip,
       coalesce(service_name, '') || ' ' || coalesce(service_path, '') AS group_key,
       NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path, NULL::BIGINT AS line_no
FROM events
WHERE ((channel = 'System' AND event_id = 7045) OR (channel = 'Security' AND event_id = 4697))
  AND (upper(coalesce(service_name, '')) = 'PSEXESVC'
       OR regexp_matches(lower(coalesce(service_path, '')),
          '(cmd(\.exe)?\s+/[ck]|%comspec%|powershell|pwsh|mshta|rundll32|regsvr32|\\\\\.\\pipe\\|\\temp\\|\\users\\public\\|\\admin\$|psexesvc)'))
