// The warehouse-export function app and what it needs: its own storage account (AzureWebJobsStorage:
// queues, tables, source log; plus the deployment package container on Flex Consumption), a Linux
// plan (Flex Consumption by default, or Consumption), a user-assigned managed identity through which
// the app reaches its storage and Application Insights (no shared keys, no instrumentation key
// auth), Application Insights on a Log Analytics workspace, and the app settings read by
// src/lib/platform/config.ts and src/lib/platform/telemetry.ts. Shaped after
// Azure-Samples/azure-functions-flex-consumption-samples (IaC/bicep).
//
//   az deployment group create -g <rg> -f infra/main.bicep \
//     -p appName=<globally unique name> sasEncryptionKey=$(openssl rand -base64 32)
//
// Then publish the code: docs/DEPLOY.md. Customers' containers are not created here: each
// integration brings its own container SAS URL.

targetScope = 'resourceGroup'

@description('Function app name (globally unique: <appName>.azurewebsites.net): letters, digits and hyphens.')
@minLength(2)
@maxLength(60)
param appName string

@description('Region of every resource. Flex Consumption is available in a subset of regions (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Hosting plan: FlexConsumption (recommended) or Consumption (Linux Consumption, Y1; no new features, retiring).')
@allowed([
  'FlexConsumption'
  'Consumption'
])
param plan string = 'FlexConsumption'

@description('Node.js major version of the Functions runtime.')
@allowed([
  '20'
  '22'
])
param nodeVersion string = '22'

@description('SAS_ENCRYPTION_KEY: base64 of exactly 32 random bytes (openssl rand -base64 32). Encrypts stored SAS URLs; to rotate it, pass the old value in sasEncryptionKeysPrevious (docs/SECURITY.md).')
@secure()
param sasEncryptionKey string

@description('SAS_ENCRYPTION_KEYS_PREVIOUS: comma-separated earlier SAS_ENCRYPTION_KEY values (read only) while rotating; empty otherwise.')
@secure()
param sasEncryptionKeysPrevious string = ''

@description('WORKSPACE_TOKEN_SIGNING_KEY: base64 of at least 32 random bytes; signs owners\' workspace tokens. Empty: the owner routes refuse every request.')
@secure()
param workspaceTokenSigningKey string = ''

@description('PROBE_RATE_LIMIT: container checks (validate, PUT) per workspace per PROBE_RATE_WINDOW_SECONDS.')
@minValue(1)
param probeRateLimit int = 20

@description('PROBE_RATE_WINDOW_SECONDS: the window of PROBE_RATE_LIMIT.')
@minValue(1)
param probeRateWindowSeconds int = 3600

@description('EXPORT_SCHEDULE: six-field NCRONTAB of the export timer.')
param exportSchedule string = '0 */15 * * * *'

@description('EXPORT_QUEUE_NAME: queue of export jobs (its poison queue is <name>-poison).')
@minLength(3)
@maxLength(56)
param exportQueueName string = 'export-jobs'

@description('EXPORT_MAX_ROWS_PER_FILE: a larger delta is split into several files.')
@minValue(1)
param exportMaxRowsPerFile int = 250000

@description('EXPORT_MAX_BYTES_PER_FILE: approximate uncompressed bytes per file.')
@minValue(1)
param exportMaxBytesPerFile int = 536870912

@description('EXPORT_TIME_BUDGET_SECONDS: work per invocation before a continuation message takes over. Keep well under the function timeout (host.json functionTimeout, 10 minutes).')
@minValue(1)
param exportTimeBudgetSeconds int = 300

@description('EXPORT_LEASE_SECONDS: how long an export holds its (workspace, file type) lease; a crashed worker\'s lease expires after this. Keep it above the time budget plus one file\'s write (a worker that lost its lease stops at its next write: too short costs retries, not data).')
@minValue(1)
param exportLeaseSeconds int = 540

@description('PEOPLE_STATE_MEMORY_MB: memory a people writer keeps of the people state between its requests, over all workspaces. A quarter of the worker heap (languageWorkers__node__arguments); raise both together.')
@minValue(1)
param peopleStateMemoryMb int = 64

@description('Flex Consumption: memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption: upper bound of instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('TELEMETRY_SAMPLING_RATIO: share of export traces sent to Application Insights (1 = every export span).')
param telemetrySamplingRatio string = '1'

@description('Application Insights accepts only Entra ID-authenticated telemetry (local auth off); the app and the host send with the managed identity. false keeps instrumentation-key ingestion.')
param applicationInsightsEntraAuth bool = true

@description('Log Analytics retention (days).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

param tags object = {}

var isFlex = plan == 'FlexConsumption'
var suffix = uniqueString(resourceGroup().id, appName)
// Storage account names: 3-24 lowercase letters and digits, globally unique: a short prefix of the
// app name and the 13-character hash (never cut off).
var storageName = 'st${take(toLower(replace(appName, '-', '')), 9)}${suffix}'
var deploymentContainerName = 'app-package-${take(toLower(appName), 32)}'
// Resource names with their own limits: plan (serverfarm) 1-60, Log Analytics workspace 4-63.
var planName = take('plan-${appName}', 60)
var logsName = take('log-${appName}', 63)

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// ---------------------------------------------------------------------------------------------
// The app's identity: reads and writes its own storage, deploys its package (Flex), sends telemetry

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}'
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// The app's own storage account (never a customer's)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // The app and (on Flex) the deployment reach storage with the managed identity. Linux
    // Consumption keeps its content on an Azure Files share, which needs a key: only there shared
    // keys stay on.
    allowSharedKeyAccess: !isFlex
    defaultToOAuthAuthentication: true
    accessTier: 'Hot'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (isFlex) {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Blobs (source log, host locks, Flex deployment package), queues (export jobs, poison), tables
// (cursors, integrations, source index, people state).
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
    name: guid(storage.id, identity.id, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// ---------------------------------------------------------------------------------------------
// Monitoring

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${appName}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: applicationInsightsEntraAuth
  }
}

resource insightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (applicationInsightsEntraAuth) {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The export dashboard (lag, failures by kind, poison messages) on the same Application Insights.
resource workbook 'Microsoft.Insights/workbooks@2022-04-01' = {
  name: guid(resourceGroup().id, appName, 'export-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Warehouse export (${appName})'
    category: 'workbook'
    sourceId: insights.id
    serializedData: loadTextContent('workbook.json')
  }
}

// ---------------------------------------------------------------------------------------------
// Plan and function app

resource hostingPlan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: isFlex ? {
    name: 'FC1'
    tier: 'FlexConsumption'
  } : {
    name: 'Y1'
    tier: 'Dynamic'
  }
  properties: {
    reserved: true // Linux
  }
}

// Read by src/lib/platform/config.ts and telemetry.ts (names and defaults there). The storage
// connection is identity-based: the Functions host and the app's own clients both read
// AzureWebJobsStorage__* (src/lib/platform/storage.ts).
var appSettings = concat([
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: insights.properties.ConnectionString
  }
  {
    name: 'TELEMETRY_SAMPLING_RATIO'
    value: telemetrySamplingRatio
  }
  {
    name: 'SAS_ENCRYPTION_KEY'
    value: sasEncryptionKey
  }
  {
    name: 'SAS_ENCRYPTION_KEYS_PREVIOUS'
    value: sasEncryptionKeysPrevious
  }
  {
    name: 'WORKSPACE_TOKEN_SIGNING_KEY'
    value: workspaceTokenSigningKey
  }
  {
    name: 'PROBE_RATE_LIMIT'
    value: string(probeRateLimit)
  }
  {
    name: 'PROBE_RATE_WINDOW_SECONDS'
    value: string(probeRateWindowSeconds)
  }
  {
    name: 'EXPORT_SCHEDULE'
    value: exportSchedule
  }
  {
    name: 'EXPORT_QUEUE_NAME'
    value: exportQueueName
  }
  {
    name: 'EXPORT_MAX_ROWS_PER_FILE'
    value: string(exportMaxRowsPerFile)
  }
  {
    name: 'EXPORT_MAX_BYTES_PER_FILE'
    value: string(exportMaxBytesPerFile)
  }
  {
    name: 'EXPORT_TIME_BUDGET_SECONDS'
    value: string(exportTimeBudgetSeconds)
  }
  {
    name: 'EXPORT_LEASE_SECONDS'
    value: string(exportLeaseSeconds)
  }
  {
    name: 'PEOPLE_STATE_MEMORY_MB'
    value: string(peopleStateMemoryMb)
  }
  {
    // V8 collects the heap before it grows past this, so an export's memory stays flat whatever the
    // sync size (measured by `npm run bench`: 200k and 2M-row initial syncs within 1.2x, under 300 MiB).
    name: 'languageWorkers__node__arguments'
    value: '--max-old-space-size=256'
  }
], applicationInsightsEntraAuth ? [
  {
    // Read by the Functions host and by src/lib/platform/telemetry.ts (the exporter's credential).
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
] : [])

// Linux Consumption: runtime by app settings, content on an Azure Files share the platform creates
// (Azure Files takes a connection string with the account key: the one shared-key use left).
var consumptionSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'node'
  }
  {
    name: 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
  }
  {
    name: 'WEBSITE_CONTENTSHARE'
    value: toLower(take('${appName}-${suffix}', 63))
  }
]

// Flex Consumption: runtime, scale and the deployment container in functionAppConfig (it rejects
// FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, linuxFxVersion and ftpsState, ARM error 51021).
var flexProperties = {
  serverFarmId: hostingPlan.id
  httpsOnly: true
  siteConfig: {
    appSettings: appSettings
    minTlsVersion: '1.2'
  }
  functionAppConfig: {
    deployment: {
      storage: {
        type: 'blobContainer'
        value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
        authentication: {
          type: 'UserAssignedIdentity'
          userAssignedIdentityResourceId: identity.id
        }
      }
    }
    scaleAndConcurrency: {
      maximumInstanceCount: maximumInstanceCount
      instanceMemoryMB: instanceMemoryMB
    }
    runtime: {
      name: 'node'
      version: nodeVersion
    }
  }
}

var consumptionProperties = {
  serverFarmId: hostingPlan.id
  httpsOnly: true
  siteConfig: {
    appSettings: concat(appSettings, consumptionSettings)
    linuxFxVersion: 'Node|${nodeVersion}'
    minTlsVersion: '1.2'
    ftpsState: 'Disabled'
    http20Enabled: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: isFlex ? flexProperties : consumptionProperties
  dependsOn: [
    deploymentContainer
    storageRoles
  ]
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output storageAccountName string = storage.name
output managedIdentityClientId string = identity.properties.clientId
output applicationInsightsName string = insights.name
output logAnalyticsWorkspaceName string = logs.name
