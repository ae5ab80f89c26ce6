/*
id: sealtrail-shell-history-cleared
title: Shell history cleared or disabled
level: high
status: stable
tactics: [defense-evasion]
techniques: [T1070.003]
description: >
  A command that clears or stops the shell history (history -c, unset HISTFILE,
  HISTFILE=/dev/null, HISTSIZE=0, rm or truncation of .bash_history, set +o history) in a
  shell history or in audited commands.
false_positives:
  - users tidying their own history; still worth a look during an incident
author: sealtrail
derived_from: fdc88d25-96fb-4b7c-9633-c0e417fdbd4e
sources: [shell_history, auditd]
*/
SELECT event_uid, ts, host, "user" AS user_name, NULL::VARCHAR AS src_ip,
       NULL::VARCHAR AS group_key, NULL::VARCHAR AS bundle_id, NULL::VARCHAR AS member_path,
       NULL::BIGINT AS line_no
FROM events
WHERE event_type IN ('shell_command', 'process_start')
  AND regexp_matches(command_line,
      '(\bhistory\s+-c\b|\bunset\s+HISTFILE\b|HISTFILE=/dev/null|HISTSIZE=0\b|set\s+\+o\s+history|(\brm\b|\bshred\b|\btruncate\b|>).*\.(bash|zsh|sh)_history)')
