// Example parameters: az deployment group create -g <rg> -f infra/main.bicep -p infra/main.bicepparam
// (SAS_ENCRYPTION_KEY from the environment so the key never lands in a file.)
using 'main.bicep'

param appName = 'warehouse-export-prod'
param plan = 'FlexConsumption'
param nodeVersion = '22'
param sasEncryptionKey = readEnvironmentVariable('SAS_ENCRYPTION_KEY')
param sasEncryptionKeysPrevious = readEnvironmentVariable('SAS_ENCRYPTION_KEYS_PREVIOUS', '')
param workspaceTokenSigningKey = readEnvironmentVariable('WORKSPACE_TOKEN_SIGNING_KEY', '')
param exportSchedule = '0 */15 * * * *'
