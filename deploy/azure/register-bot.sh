#!/usr/bin/env bash
# Register kollega with Azure AI Bot Service and enable the Microsoft Teams channel.
#
#   az login
#   deploy/azure/register-bot.sh --resource-group rg-kollega --name kollega-kommune \
#       --host kollega.kommune.example [--tenancy single|multi] [--location norwayeast] \
#       [--sku F0|S1] [--env-file PATH] [--no-secret]
#
# What it does (each step is skipped when the thing already exists, so it is safe to re-run,
# e.g. to move the messaging endpoint to a new host):
#   1. an Entra ID app registration named --name, and its service principal;
#   2. a new client secret (unless --no-secret), appended so existing secrets keep working
#      until you delete them;
#   3. the resource group (if missing) and the Azure Bot resource with the messaging endpoint
#      https://HOST/api/messages;
#   4. the Microsoft Teams channel.
# It then prints the settings kollega needs (MicrosoftAppId, MicrosoftAppPassword,
# MicrosoftAppTenantId, MicrosoftAppType) on standard output. The secret is shown once and
# written nowhere, unless you ask with --env-file (created with mode 0600, never overwritten).
#
# Single tenant is the default: Azure stopped creating new multi-tenant bots after 2025-07-31.
set -euo pipefail

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

die() {
    echo "register-bot.sh: $*" >&2
    exit 1
}

log() {
    # Progress goes to stderr so stdout carries only the settings.
    echo "==> $*" >&2
}

resource_group=""
name=""
host=""
tenancy="single"
location="westeurope"
sku="F0"
env_file=""
new_secret=1

while (($# > 0)); do
    case "$1" in
        -g | --resource-group) resource_group="${2:?--resource-group needs a value}"; shift 2 ;;
        -n | --name) name="${2:?--name needs a value}"; shift 2 ;;
        --host) host="${2:?--host needs a value}"; shift 2 ;;
        --tenancy) tenancy="${2:?--tenancy needs single or multi}"; shift 2 ;;
        -l | --location) location="${2:?--location needs a value}"; shift 2 ;;
        --sku) sku="${2:?--sku needs F0 or S1}"; shift 2 ;;
        --env-file) env_file="${2:?--env-file needs a path}"; shift 2 ;;
        --no-secret) new_secret=0; shift ;;
        -h | --help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done

[[ -n "$resource_group" ]] || die "--resource-group is required"
[[ -n "$name" ]] || die "--name is required"
[[ -n "$host" ]] || die "--host is required (the public host name, e.g. kollega.kommune.example)"
# Azure's rule for bot resource names: 4-42 characters of letters, digits, - and _.
[[ "$name" =~ ^[A-Za-z0-9_-]{4,42}$ ]] || die "--name must be 4-42 letters, digits, - or _"
# A bare host name: the script adds https:// and the path itself.
[[ "$host" =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] || die "--host is a host name only, without https:// or a path"
case "$tenancy" in
    single) app_type="SingleTenant"; audience="AzureADMyOrg" ;;
    multi) app_type="MultiTenant"; audience="AzureADMultipleOrgs" ;;
    *) die "--tenancy must be single or multi" ;;
esac
case "$sku" in F0 | S1) ;; *) die "--sku must be F0 or S1" ;; esac
if [[ -n "$env_file" && -e "$env_file" ]]; then
    die "$env_file exists; not overwriting it (choose another path or move it away)"
fi

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not installed"
endpoint="https://${host}/api/messages"

log "checking the Azure CLI login"
tenant_id="$(az account show --query tenantId --output tsv)" \
    || die "not logged in: run 'az login' (and 'az account set --subscription ...')"

log "app registration '$name'"
app_id="$(az ad app list --display-name "$name" --query '[0].appId' --output tsv)"
if [[ -z "$app_id" ]]; then
    app_id="$(az ad app create --display-name "$name" --sign-in-audience "$audience" \
        --query appId --output tsv)"
    log "created app registration $app_id"
else
    log "reusing app registration $app_id"
fi

# The service principal lets the bot get tokens in this tenant (single-tenant bots need it).
if ! az ad sp show --id "$app_id" --output none 2>/dev/null; then
    az ad sp create --id "$app_id" --output none
    log "created service principal"
fi

password=""
if ((new_secret)); then
    # --append keeps existing secrets valid, so running pods keep working until you roll them.
    password="$(az ad app credential reset --id "$app_id" --append \
        --display-name "kollega $(date -u +%Y-%m-%d)" --years 1 \
        --query password --output tsv)"
    log "created a client secret valid for one year: put a reminder in the calendar"
fi

if ! az group show --name "$resource_group" --output none 2>/dev/null; then
    az group create --name "$resource_group" --location "$location" --output none
    log "created resource group $resource_group in $location"
fi

log "Azure Bot '$name' with messaging endpoint $endpoint"
if az bot show --resource-group "$resource_group" --name "$name" --output none 2>/dev/null; then
    az bot update --resource-group "$resource_group" --name "$name" --endpoint "$endpoint" \
        --output none
    log "updated the messaging endpoint of the existing bot"
else
    bot_args=(--resource-group "$resource_group" --name "$name" --app-type "$app_type"
        --appid "$app_id" --endpoint "$endpoint" --sku "$sku")
    if [[ "$app_type" == "SingleTenant" ]]; then
        bot_args+=(--tenant-id "$tenant_id")
    fi
    az bot create "${bot_args[@]}" --output none
    log "created the bot"
fi

log "Microsoft Teams channel"
if ! az bot msteams show --resource-group "$resource_group" --name "$name" --output none 2>/dev/null; then
    az bot msteams create --resource-group "$resource_group" --name "$name" --output none
    log "enabled the Teams channel"
fi

# A multi-tenant bot validates tokens from any tenant: kollega leaves the tenant id empty then.
settings_tenant=""
if [[ "$app_type" == "SingleTenant" ]]; then
    settings_tenant="$tenant_id"
fi

print_settings() {
    echo "MicrosoftAppId=${app_id}"
    if ((new_secret)); then
        echo "MicrosoftAppPassword=${password}"
    else
        echo "# MicrosoftAppPassword unchanged (--no-secret): keep the one you have"
    fi
    echo "MicrosoftAppTenantId=${settings_tenant}"
    echo "MicrosoftAppType=${app_type}"
}

if [[ -n "$env_file" ]]; then
    # Only on request, and readable by the owner only.
    (umask 077 && print_settings >"$env_file")
    log "wrote the settings to $env_file (mode 0600)"
else
    log "settings for kollega (shown once; store the secret in your secret store now):"
    print_settings
fi
log "next: build the Teams app package with: python deploy/teams/package.py --out kollega.zip"
